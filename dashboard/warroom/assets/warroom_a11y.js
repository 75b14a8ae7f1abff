/* Accessibility repairs of Dash 4's own markup, applied to every panel as it renders (axe-core
   checks the result in tests/warroom/test_page_quality.py):
   - RadioItems and Checklist render role="listbox" around role="option" labels that hold real
     radio/checkbox inputs: a listbox needs a name and its options may not hold controls. The
     native inputs already say everything, so the list becomes a (radio)group, named by the
     visible words before it (a "muted" span, as the panels write them), and the labels lose
     their roles.
   - Dropdown puts a focusable but aria-hidden input in front of its button: the button takes
     the keyboard focus itself.
   - An input without a label is named by the visible words before it; an upload field by its
     own caption. */
(function () {
    "use strict";

    function captionBefore(el) {
        // Dash 4 wraps some inputs: look beside the outermost wrapper the element starts.
        var node = el;
        while (!node.previousElementSibling && node.parentElement && node.parentElement.children.length <= 2
               && !node.parentElement.classList.contains("panel-tools")) {
            node = node.parentElement;
        }
        var prev = node.previousElementSibling;
        if (!prev || !prev.classList.contains("muted")) { return null; }
        var named = prev.id ? prev : prev.querySelector("[id]");
        return named && named.textContent.trim() ? named.id : null;
    }

    function nameBy(el, id) {
        if (id && !el.hasAttribute("aria-labelledby") && !el.hasAttribute("aria-label")) {
            el.setAttribute("aria-labelledby", id);
        }
    }

    function labelled(input) {
        return input.closest("label") || (input.id && document.querySelector('label[for="' + CSS.escape(input.id) + '"]'));
    }

    function repair() {
        document.querySelectorAll('.dash-options-list[role="listbox"]').forEach(function (list) {
            list.setAttribute("role", list.querySelector('input[type="radio"]') ? "radiogroup" : "group");
            nameBy(list, captionBefore(list));
        });
        document.querySelectorAll(".dash-options-list-option[role], .dash-options-list-option[aria-selected]")
            .forEach(function (option) {
                option.removeAttribute("role");
                option.removeAttribute("aria-selected");
            });
        document.querySelectorAll(".dash-dropdown-focus-target").forEach(function (target) {
            if (target.tabIndex !== -1) { target.tabIndex = -1; }
            var button = target.nextElementSibling;
            if (button && button.tagName === "BUTTON" && !button.disabled && button.tabIndex !== 0) { button.tabIndex = 0; }
        });
        document.querySelectorAll('input:not([type="hidden"]):not([aria-label]):not([aria-labelledby])')
            .forEach(function (input) {
                if (input.classList.contains("dash-dropdown-focus-target") || labelled(input)) { return; }
                if (input.type === "file") {
                    var caption = input.parentElement && input.parentElement.querySelector("[id]");
                    nameBy(input, caption && caption.id);
                } else {
                    nameBy(input, captionBefore(input));
                }
            });
    }

    var pending = false;
    function schedule() {
        if (!pending) {
            pending = true;
            window.requestAnimationFrame(function () { pending = false; repair(); });
        }
    }

    function start() {
        repair();
        new MutationObserver(schedule).observe(document.body, {
            childList: true, subtree: true, attributes: true, attributeFilter: ["role", "aria-selected", "tabindex"]
        });
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
})();
