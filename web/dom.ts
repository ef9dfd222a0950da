/**
 * DOM building without HTML parsing. Every string a user or the server supplied reaches the page as a text node or
 * an attribute value, never through `innerHTML`, so a message like `<img src=x onerror=...>` stays text.
 */

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`index.html has no #${id}`)
  return element as T
}

export type Child = Node | string | number | undefined | null | false

export const h = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Readonly<Record<string, string | boolean | undefined>> = {},
  ...children: ReadonlyArray<Child>
): HTMLElementTagNameMap[K] => {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue
    element.setAttribute(name, value === true ? "" : value)
  }
  append(element, ...children)
  return element
}

export const append = (parent: Node, ...children: ReadonlyArray<Child>): void => {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)))
  }
}

/** Replaces all children of `parent`; text goes in as text. */
export const replaceChildren = (parent: Element, ...children: ReadonlyArray<Child>): void => {
  parent.replaceChildren()
  append(parent, ...children)
}

export const setText = (element: Element, text: string): void => {
  element.textContent = text
}
