"""The page's look: its theme, style sheet, and the script that links citation markers to their sources.

Gradio 6 takes these at ``launch()`` (not in the Blocks constructor); :func:`qa.web.server.launch` passes them.
"""

from __future__ import annotations

import gradio as gr

__all__ = ["CSS", "JS", "theme"]

CSS = """
#qa-header { margin-bottom: 0; }
.qa-header h1 { font-size: 1.6rem; font-weight: 700; margin: 0 0 .2rem 0; }
.qa-panel-title { font-size: 1.05rem; font-weight: 700; margin: 0 0 .6rem 0; }
.qa-header p { margin: 0 0 .4rem 0; color: var(--body-text-color-subdued); }
.qa-header summary { cursor: pointer; font-size: .9rem; color: var(--body-text-color-subdued); }
.qa-header ul { margin: .3rem 0 .2rem 1.2rem; font-size: .9rem; }
.qa-header details p { margin: 0 0 0 1.2rem; font-size: .85rem; }
.qa-header code { font-size: .8rem; word-break: break-all; }
.qa-dim { color: var(--body-text-color-subdued); }
.qa-question { white-space: pre-wrap; overflow-wrap: anywhere; }
.qa-answer { line-height: 1.55; overflow-wrap: anywhere; }
.qa-none strong { display: block; margin-bottom: .25rem; }
.qa-confidence { margin-top: .35rem; font-size: .8rem; color: var(--body-text-color-subdued); }
a.qa-cite { text-decoration: none; font-weight: 700; font-size: .85em; padding: 0 .15em; border-radius: 4px;
  color: var(--color-accent); background: var(--color-accent-soft); margin-left: .1em; white-space: nowrap; }
a.qa-cite:hover, a.qa-cite:focus { text-decoration: underline; }
.qa-followup { margin-top: .35rem; font-size: .8rem; color: var(--body-text-color-subdued); }
#sources { max-height: 720px; overflow-y: auto !important; }
.qa-sources { padding: .25rem .5rem; }
.qa-empty { color: var(--body-text-color-subdued); font-size: .95rem; }
.qa-turn { margin: 0 0 1rem 0; }
.qa-turn:not(.qa-latest) { opacity: .8; }
.qa-turn-head { font-size: .95rem; font-weight: 700; margin: 0 0 .4rem 0; }
.qa-q { font-weight: 400; color: var(--body-text-color-subdued); overflow-wrap: anywhere; }
.qa-list { list-style: none; padding: 0; margin: 0; }
.qa-src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5rem .65rem;
  margin: 0 0 .5rem 0; background: var(--block-background-fill); scroll-margin-top: 1rem;
  transition: box-shadow .3s, border-color .3s; }
.qa-src:target, .qa-src.qa-hover { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
.qa-src-head { display: flex; gap: .4rem; align-items: baseline; font-weight: 700; }
.qa-badge { flex: none; min-width: 1.5em; text-align: center; border-radius: 4px; font-size: .85em;
  color: var(--color-accent); background: var(--color-accent-soft); }
.qa-doc { overflow-wrap: anywhere; }
.qa-src-meta { font-size: .8rem; color: var(--body-text-color-subdued); margin: .1rem 0 .3rem 0; }
.qa-ctx { margin: 0; font-size: .92rem; line-height: 1.5; color: var(--body-text-color-subdued);
  overflow-wrap: anywhere; }
.qa-ctx mark.qa-cited { color: var(--body-text-color); background: #fde68a; padding: 0 .1em; border-radius: 2px; }
.dark .qa-ctx mark.qa-cited { background: #854d0e; }
.qa-none-note { margin: 0 0 .4rem 0; }
.qa-closest summary { cursor: pointer; font-size: .9rem; color: var(--body-text-color-subdued); margin-bottom: .4rem; }
.qa-closest .qa-src { border-style: dashed; }
.qa-closest .qa-ctx mark.qa-cited { background: transparent; text-decoration: underline dotted; }
#qa-docs { margin-top: .25rem; }
.qa-docs-note { margin: 0 0 .4rem 0; font-size: .88rem; color: var(--body-text-color-subdued); }
.qa-docs-note code { font-size: .8rem; word-break: break-all; }
.qa-doc-row { align-items: center; border-bottom: 1px solid var(--border-color-primary); padding: .15rem 0; }
.qa-doc-item { font-size: .92rem; overflow-wrap: anywhere; }
.qa-doc-item .qa-dim { font-size: .82rem; }
.qa-upload-report { font-size: .9rem; overflow-wrap: anywhere; }
.qa-upload-report p { margin: .2rem 0; }
.qa-upload-report ul { margin: .2rem 0 .2rem 1.1rem; }
.qa-upload-report .qa-ok::marker { content: "✓ "; color: #15803d; }
.qa-failed, .qa-failed-head { color: var(--error-text-color, #b91c1c); }
.qa-file { font-weight: 700; }
@media (max-width: 640px) {
  .qa-header h1 { font-size: 1.3rem; }
  #sources { max-height: none; overflow-y: visible !important; }
  .qa-sources { padding: 0; }
  .qa-src { padding: .45rem .5rem; }
}
"""

# Hovering a marker highlights its source and scrolls it into view when it is off screen; clicking follows the
# link to the anchor. Delegated from the document, so it works for messages added later.
JS = """
() => {
  const source = (e) => {
    const a = e.target && e.target.closest ? e.target.closest('a.qa-cite') : null;
    const id = a ? (a.getAttribute('href') || '').slice(1) : '';
    return id ? document.getElementById(id) : null;
  };
  document.addEventListener('mouseover', (e) => {
    const el = source(e); if (!el) return;
    el.classList.add('qa-hover');
    el.scrollIntoView({block: 'nearest', behavior: 'smooth'});
  });
  document.addEventListener('mouseout', (e) => {
    const el = source(e); if (el) el.classList.remove('qa-hover');
  });
}
"""


def theme() -> gr.themes.Base:
    """The page's theme: Gradio's default in indigo and slate, with the bundled (local, offline) font."""
    return gr.themes.Default(
        primary_hue="indigo",
        neutral_hue="slate",
        # The bundled Source Sans Pro semibold file is a small subset: load only regular and bold, so 600 maps to bold.
        font=(gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"),
    )
