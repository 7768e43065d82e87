// Building elements without HTML strings: every text from the API goes in through
// textContent (or a text node), so no description, reason or status can ever become markup.

const PROPS = new Set(["disabled", "checked", "value", "hidden"]);

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props instanceof Node || Array.isArray(props) || typeof props === "string") {
    children.unshift(props); // h("tr", cells): no properties, only children
    props = null;
  }
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") el.textContent = String(value);
    else if (name === "class") el.className = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (PROPS.has(name)) el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A text field with its label, the way tests and screen readers find it: by the label's text.
let fieldCount = 0;
export function field(label, props) {
  const id = `f${++fieldCount}`;
  const input = h("input", { id, ...props });
  return { input, row: h("span", { class: "field" }, h("label", { for: id, text: label }), input) };
}

export function alertBox() {
  // role="alert" is announced when its text changes; an empty one stays invisible.
  const el = h("p", { class: "alert", role: "alert", hidden: true });
  return {
    el,
    show(message) {
      el.textContent = message;
      el.hidden = !message;
    },
    clear() {
      el.textContent = "";
      el.hidden = true;
    },
  };
}
