/**
 * Side panels that slide over the conversation on narrow screens (CSS decides when they are drawers). One is open
 * at a time; opening moves focus into it, Escape or a tap on the scrim closes it and gives focus back to its toggle.
 */

export interface Drawer {
  readonly toggle: HTMLButtonElement
  readonly panel: HTMLElement
  /** Class put on <body> while open. */
  readonly openClass: string
}

export interface Drawers {
  readonly toggle: (drawer: Drawer) => void
  readonly closeAll: (returnFocus?: boolean) => void
}

export const makeDrawers = (scrim: HTMLElement, drawers: ReadonlyArray<Drawer>): Drawers => {
  const closeAll = (returnFocus = false) => {
    for (const drawer of drawers) {
      const wasOpen = document.body.classList.contains(drawer.openClass)
      document.body.classList.remove(drawer.openClass)
      drawer.toggle.setAttribute("aria-expanded", "false")
      if (wasOpen && returnFocus) drawer.toggle.focus()
    }
    scrim.hidden = true
  }

  const toggle = (drawer: Drawer) => {
    const open = !document.body.classList.contains(drawer.openClass)
    closeAll()
    if (!open) return
    document.body.classList.add(drawer.openClass)
    drawer.toggle.setAttribute("aria-expanded", "true")
    scrim.hidden = false
    drawer.panel.querySelector<HTMLElement>("button, input, [tabindex]")?.focus()
  }

  for (const drawer of drawers) drawer.toggle.addEventListener("click", () => toggle(drawer))
  scrim.addEventListener("click", () => closeAll(true))
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !scrim.hidden) closeAll(true)
  })
  return { toggle, closeAll }
}
