"""The user's keymap (`[tui] keymap`, binding id → keys) checked against tsr's binding ids."""

from __future__ import annotations

from importlib import import_module

from textual.binding import Binding

#: every class whose BINDINGS the keymap may remap, as "module:Class"
BOUND_CLASSES = (
    "tsr.tui.app:TsrApp",
    "tsr.tui.screens.base:PaneScreen",
    "tsr.tui.widgets.gallery:Gallery",
    "tsr.tui.screens.gallery:GalleryScreen",
    "tsr.tui.widgets.generate_form:GenerateForm",
    "tsr.tui.screens.create:CreateScreen",
    "tsr.tui.widgets.lora_picker:LoraPicker",
    "tsr.tui.widgets.model_list:ModelList",
    "tsr.tui.screens.models:ModelsScreen",
    "tsr.tui.screens.full_image:FullImageScreen",
    "tsr.tui.screens.civitai:CivitaiScreen",
    "tsr.tui.screens.gallery_filter:GalleryFilterScreen",
    "tsr.tui.screens.confirm:ConfirmScreen",
    "tsr.tui.screens.dialogs:TextPrompt",
    "tsr.tui.screens.help:HelpScreen",
)


def all_bindings() -> dict[str, list[tuple[str, Binding]]]:
    """tsr's bindings by the class that owns them, each as (binding id, binding)."""
    found: dict[str, list[tuple[str, Binding]]] = {}
    for spec in BOUND_CLASSES:
        module_name, class_name = spec.split(":")
        owner = getattr(import_module(module_name), class_name)
        rows = [
            (binding.id, binding)
            for binding in owner.BINDINGS
            if isinstance(binding, Binding) and binding.id
        ]
        if rows:
            found[class_name] = rows
    return found


def check_keymap(keymap: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The keymap entries that name a known binding id, and the ids that name none."""
    known = {binding_id for rows in all_bindings().values() for binding_id, _ in rows}
    valid = {binding_id: keys for binding_id, keys in keymap.items() if binding_id in known}
    unknown = sorted(binding_id for binding_id in keymap if binding_id not in known)
    return valid, unknown
