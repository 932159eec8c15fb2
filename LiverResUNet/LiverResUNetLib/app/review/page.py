"""The review page: trame + trame-slicer (Slicer's MRML views and segment editor, rendered off-screen and streamed
to the browser), around one :class:`~LiverResUNetLib.app.review.case.ReviewCase`.

Left: the summary (liver volume, tumor count, burden), the lesion list (click a row: every view centres on the
lesion), Reject, Add lesion (then one click in the liver), Paint / Erase with a brush in mm, Undo / Redo,
window presets, segment visibility and opacity, Save and Accept. Right: axial, coronal, sagittal and 3D views.
Keyboard: n / p next / previous lesion, r reject, a add lesion, ctrl+z undo, ctrl+y redo.
Only this module (and command.py, lazily) imports trame.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trame.app import get_server
from trame.ui.vuetify3 import VAppLayout
from trame.widgets import client, html
from trame.widgets import vuetify3 as v
from trame_server import Server
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.segmentation import BrushDiameterMode, SegmentationEffectErase, SegmentationEffectPaint
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

from LiverResUNetLib.app.review.case import PendingCase, ReviewCase
from LiverResUNetLib.app.review.worklist import Worklist
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.scene.lesion_review import jump_slices_to
from LiverResUNetLib.scene.segmentation_nodes import LIVER_SEGMENT, TUMOR_SEGMENT
from LiverResUNetLib.scene.surface_models import update_surface_models, vtk_warnings_held

# (name, window, level) in HU; the liver window first: the default.
WINDOW_PRESETS = (("Liver", 150.0, 90.0), ("Abdomen", 400.0, 50.0), ("Bone", 1800.0, 400.0),
                  ("Lung", 1500.0, -600.0))
LAYOUT_ID = "review"
# After a stroke the views send a quick frame and, five frames later (trame-rca's still frame, 0.17 s at 30 frames/s),
# a full-quality one; taking the stroke back (reading the labels, the lesion list, the recovery file) holds the event
# loop for most of a second, so it starts once both are out. At 0.1 s the painted view waited for it (about 1 s).
STROKE_READ_DELAY_S = 0.3
SURFACES_DELAY_S = 1.0  # after an edit: the edit's slices and summary reach the browser first
FIRST_SURFACES_DELAY_S = 3.0  # after a browser connects: its first slices come first
KEYS_SCRIPT = """
document.addEventListener('keydown', (event) => {
  const tag = (event.target && event.target.tagName) || '';
  if (tag === 'INPUT' || tag === 'TEXTAREA') { return; }
  const key = (event.ctrlKey || event.metaKey ? 'ctrl+' : '') + event.key.toLowerCase();
  if (['n', 'p', 'r', 'a', 'ctrl+z', 'ctrl+y', 'escape'].includes(key)) {
    event.preventDefault();
    window.trame.trigger('review_key', [key]);
  }
});
"""


def testid(name: str) -> list[str]:
    """The ``data-testid`` attribute the browser tests find an element by."""
    return [f'data-testid="{name}"']


def review_layout() -> Layout:
    """Axial large on the left; 3D, coronal and sagittal stacked on the right."""
    return Layout(LayoutDirection.Horizontal, [
        ViewLayoutDefinition.axial_view(),
        Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.threed_view(), ViewLayoutDefinition.coronal_view(),
                                          ViewLayoutDefinition.sagittal_view()]),
    ])


def new_slicer_app() -> SlicerApp:
    """trame-slicer's application: a scene with Slicer's logics, its view manager and segment editor."""
    return SlicerApp()


class ReviewPage:
    """Binds a case to the page's state and controls; each edit refreshes the list and the summary."""

    def __init__(self, slicer_app: SlicerApp, server: Server | None = None, dataset: Path | None = None,
                 case_id: str = "case", worklist: Worklist | None = None) -> None:
        """The page and its views (axial, coronal, sagittal, 3D) in ``slicer_app``'s scene, before any data;
        with a ``dataset`` folder, *Save as training case* adds the reviewed case to it as ``case_id``; with a
        ``worklist``, the page lists its cases and opens them one after another (``case_id`` the one shown)."""
        self.app, self.dataset, self.case_id, self.worklist = slicer_app, dataset, case_id, worklist
        self._hooked = False
        self.server = server or get_server(client_type="vue3")
        self.state, self.ctrl = self.server.state, self.server.controller
        self._mode = "view"
        self._writing = False  # while the page itself writes into the segmentation: not a stroke
        self._models: dict[str, Any] = {}
        self._surfaces_pending = False
        self._segmenting: asyncio.Task[None] | None = None  # the model's run in the background (kept referenced)
        register_rca_factories(self.app.view_manager, self.server)
        self.layout_manager = LayoutManager(self.app.scene, self.app.view_manager, self.server)
        # The views render synchronously while they are built: build them before the CT is in the scene (seconds
        # on a 512 x 512 x 129 CT otherwise). Their slice views observe an event VTK 9.6 deprecates (a warning
        # per view, on every start): warnings are off meanwhile.
        with vtk_warnings_held():
            self.layout_manager.register_layout(LAYOUT_ID, review_layout())
            self._build_ui()
            self.layout_manager.set_layout(LAYOUT_ID)

    def show(self, case: ReviewCase) -> None:
        """Review ``case`` (loaded into this page's scene) on the page."""
        self.case = case
        self.state.loading = False
        if not self._hooked:
            self._hook_views()
            self._bind()
            self._hooked = True
        self._show_case()
        self.state.offer_recovery = case.recovery_available()
        self.state.message = ""
        self.refresh()

    def show_progress(self, fraction: float, message: str) -> None:
        """While the model segments the CT, before :meth:`show`: the page's progress bar and the step it is at."""
        with self.state:  # outside a request: sent to the browser at the end
            self.state.loading = True
            self.state.load_progress, self.state.load_message = round(100.0 * fraction), message

    def segment_then_show(self, pending: PendingCase, report: Callable[[float, str], None]) -> None:
        """Once the server runs (call it from its event loop): the model segments ``pending``'s CT in a worker
        thread while the page shows the progress (and ``report`` gets it too), then the page shows the case. A
        failure is shown on the page, under the progress bar."""
        loop = asyncio.get_running_loop()

        def progress(fraction: float, message: str) -> None:
            report(fraction, message)
            loop.call_soon_threadsafe(self.show_progress, fraction, message)

        async def segment() -> None:
            try:
                labels = await loop.run_in_executor(None, pending.segment, progress)
            except Exception as error:  # the page is the only place left to say it
                with self.state:
                    self.state.load_message = f"segmentation failed: {error}"
                return
            with self.state:
                self.show(pending.finish(labels))
            self._later(FIRST_SURFACES_DELAY_S, self.frame_3d)

        self.show_progress(0.0, "segmenting the CT")
        self._segmenting = loop.create_task(segment())

    # Scene

    def _hook_views(self) -> None:
        """Once per page: strokes, clicks in the slice views, the first surfaces when a browser connects."""
        self.app.segmentation_editor.segmentation_modified.connect(self._on_segmentation_modified)
        for view in self.app.view_manager.get_slice_views():
            view.set_visible_in_3d(False)  # the 3D view shows the surfaces, unobstructed
            view.interactor().AddObserver("LeftButtonPressEvent", self._on_left_button, 10.0)
        # The surfaces take seconds on a whole CT: computed once the page shows its first slices.
        self.ctrl.on_client_connected.add(lambda *_: self._later(FIRST_SURFACES_DELAY_S, self.frame_3d))

    def _show_case(self) -> None:
        case, app = self.case, self.app
        app.display_manager.show_volume_in_slice_background(case.ct_node)
        self.set_window(WINDOW_PRESETS[0][0])
        editor = app.segmentation_editor
        editor.set_active_segmentation(case.segmentation_node, case.ct_node)
        editor.set_active_segment_id(TUMOR_SEGMENT.segment_id)
        app.display_manager.reset_views()
        self.show_position()

    def open_case(self, offset: int) -> None:
        """Leave the worklist's current case for the one ``offset`` places on; its own edits stay in its recovery
        file and its state in the worklist."""
        if self.worklist is None:
            return
        old = self.case
        self.set_mode("view")
        self.case_id = self.worklist.neighbour(self.case_id, offset)
        self.show(self.worklist.open(self.app.scene, self.case_id))
        for node in (old.segmentation_node, old.ct_node):
            self.app.scene.RemoveNode(node)
        self.state.message = f"case {self.case_id}"
        if self._models:
            self.frame_3d()

    def update_surfaces(self) -> None:
        """The liver and tumor surfaces as model nodes in the 3D view (trame-slicer's streamed 3D view shows model
        nodes, not a segmentation's own surfaces); recomputed from the labels after each edit."""
        self._surfaces_pending = False
        update_surface_models(self.app.scene, self.case.segmentation_node, self._models)
        self._views_render()

    def _later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the event loop has sent what is pending (renders, state), or now without one."""
        try:
            asyncio.get_running_loop().call_later(delay_s, callback)
        except RuntimeError:  # no event loop (the page driven without its server)
            callback()

    def _surfaces_soon(self) -> None:
        if not self._surfaces_pending:
            self._surfaces_pending = True
            self._later(SURFACES_DELAY_S, self.update_surfaces)

    def frame_3d(self, *_: Any) -> None:
        """Show the surfaces and frame the 3D view on them once a browser shows it: a view off the page does not
        render, and its content reaches the renderer at a render."""
        self.update_surfaces()
        for view in self.app.view_manager.get_threed_views():
            view.renderer().SetUseDepthPeeling(False)  # Mesa's off-screen EGL draws no translucent liver with it
            view.render()
            view.fit_view_to_content()
            view.schedule_render()

    def set_window(self, preset: str) -> None:
        _, window, level = next(item for item in WINDOW_PRESETS if item[0] == preset)
        display = self.case.ct_node.GetScalarVolumeDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevel(window, level)
        self.state.window_preset = preset

    def _views_render(self) -> None:
        for view in self.app.view_manager.get_views():
            view.schedule_render()

    # Edits

    def _run_edit(self, description: str, edit: Callable[[], Any]) -> None:
        """Run one edit; a refused one shows why and changes nothing."""
        try:
            self._writing = True
            done = edit()
        except ValueError as error:  # a seed off the liver or on healthy liver, a lesion number gone
            self.state.message = str(error)
            return
        finally:
            self._writing = False
        self.state.message = f"{description}: done" if done is not None else f"{description}: nothing changed"
        self.refresh()

    def _on_segmentation_modified(self, *_: Any) -> None:
        """A paint or erase stroke ended (the segment editor applies a stroke at mouse-up). Its voxels are taken
        back a moment later, so that the views' render of the stroke reaches the browser first."""
        if self._writing or self._mode not in ("paint", "erase"):
            return
        self._later(STROKE_READ_DELAY_S, self._take_stroke)

    def _take_stroke(self) -> None:
        try:
            self._writing = True
            edit = self.case.stroke_finished(erased_tumor=self._mode == "erase")
        finally:
            self._writing = False
        if edit is not None:  # the editor signals more than once per stroke; the first one carries it
            with self.state:  # outside a request: send the changed state to the browser at the end
                self.state.message = f"{self._mode}: done"
                self.refresh()

    def _on_left_button(self, interactor: Any, _event: str) -> None:
        """In Add lesion mode, the click in a slice view is the seed (world RAS under the mouse)."""
        if self._mode != "add":
            return
        for view in self.app.view_manager.get_slice_views():
            if view.interactor() is interactor:
                x, y = interactor.GetEventPosition()
                point = view.get_view_node().GetXYToRAS().MultiplyPoint((x, y, 0.0, 1.0))[:3]
                self.set_mode("view")
                self._run_edit("add lesion", lambda: self.case.add_lesion_at(point))
                return

    def set_mode(self, mode: str) -> None:
        """view, add (next click grows a lesion), paint or erase (the tumor segment, brush in mm)."""
        self._mode = mode if mode != self._mode or mode == "view" else "view"
        editor = self.app.segmentation_editor
        if self._mode in ("paint", "erase"):
            effect = editor.set_active_effect_type(SegmentationEffectPaint if self._mode == "paint"
                                                   else SegmentationEffectErase)
            editor.set_active_segment_id(TUMOR_SEGMENT.segment_id)
            effect.set_brush_diameter(float(self.state.brush_mm), BrushDiameterMode.Absolute)
        else:
            editor.deactivate_effect()
        self.state.mode = self._mode

    def jump_to(self, number: int) -> None:
        row = next((row for row in self.case.lesion_rows() if row.number == number), None)
        if row is None:
            return
        jump_slices_to(self.app.scene, row.centroid_ras)
        self.state.selected = number
        self.show_position()
        self._views_render()

    def show_position(self) -> None:
        """Where the slice views cross (RAS mm), shown under the list: the point a row click centred them on."""
        views = self.app.view_manager.get_slice_views()
        if views:
            matrix = views[0].get_view_node().GetSliceToRAS()
            self.state.position = " ".join(f"{axis} {matrix.GetElement(row, 3):.1f}"
                                           for row, axis in enumerate("RAS"))

    def step(self, offset: int) -> None:
        numbers = [row["number"] for row in self.state.lesions]
        if not numbers:
            return
        current = numbers.index(self.state.selected) if self.state.selected in numbers else -1 if offset > 0 else 0
        self.jump_to(numbers[(current + offset) % len(numbers)])

    def reject_selected(self) -> None:
        if self.state.selected:
            number = int(self.state.selected)
            self._run_edit(f"reject lesion {number}", lambda: self.case.reject(number))

    def refresh(self) -> None:
        summary = self.case.summary()
        self.state.lesions = [{"number": row.number, "volume_ml": f"{row.volume_ml:.2f}",
                               "diameter_mm": f"{row.longest_axial_diameter_mm:.1f}", "state": row.state}
                              for row in self.case.lesion_rows()]
        if self.state.selected not in [row["number"] for row in self.state.lesions]:
            self.state.selected = None
        self.state.liver_ml = f"{summary.liver_volume_ml:.1f}"
        self.state.tumor_count = summary.tumor_count
        self.state.burden = "n/a" if summary.tumor_burden_percent is None else f"{summary.tumor_burden_percent:.2f}"
        self.state.can_undo, self.state.can_redo = bool(self.case.undo_stack), bool(self.case.redo_stack)
        self.state.accepted, self.state.edited = self.case.accepted, self.case.edited
        self.state.edits = len(self.case.undo_stack)
        if self.worklist is not None:
            self.state.case_name = self.case_id
            self.state.worklist = [{"name": name, "state": state}
                                   for name, state in self.worklist.states.states.items()]
        if self._models:  # after an edit (the first surfaces come with the first page)
            self._surfaces_soon()
        self._views_render()

    def save(self) -> None:
        """Save writes the .seg.nrrd and, for a DICOM CT, the DICOM SEG; the message names both (or why not)."""
        try:
            self.state.message = f"saved {self.case.save()}"
        except InputError as error:  # e.g. a series whose headers a DICOM SEG cannot reference
            self.state.message = f"not saved: {error}"

    def save_training_case(self) -> None:
        if self.dataset is not None:
            folder = self.case.save_training_case(self.dataset, self.case_id)
            self.state.message = f"saved as training case {self.case_id} in {folder}"

    def accept(self) -> None:
        try:
            self.state.message = f"accepted; saved {self.case.accept()}"
        except InputError as error:  # not signed off: the worklist keeps the case to review
            self.state.message = f"not accepted: {error}"
            return
        if self.worklist is not None:
            self.worklist.states.signed_off(self.case_id, self.case.edited)
        self.refresh()

    def on_key(self, key: str) -> None:
        actions: dict[str, Callable[[], Any]] = {
            "n": lambda: self.step(1), "p": lambda: self.step(-1), "r": self.reject_selected,
            "a": lambda: self.set_mode("add"), "ctrl+z": lambda: self._run_edit("undo", self.case.undo),
            "ctrl+y": lambda: self._run_edit("redo", self.case.redo), "escape": lambda: self.set_mode("view")}
        actions[key]()

    def resume(self, accept: bool) -> None:
        if accept:
            self._run_edit("resume unsaved edits", self.case.resume)
        else:
            self.case.discard_recovery()
        self.state.offer_recovery = False

    # UI

    def _bind(self) -> None:
        state, ctrl = self.state, self.ctrl
        ctrl.review_next_case = lambda: self.open_case(1)
        ctrl.review_previous_case = lambda: self.open_case(-1)
        ctrl.review_jump = self.jump_to
        ctrl.review_reject = self.reject_selected
        ctrl.review_mode = self.set_mode
        ctrl.review_undo = lambda: self._run_edit("undo", self.case.undo)
        ctrl.review_redo = lambda: self._run_edit("redo", self.case.redo)
        ctrl.review_save = self.save
        ctrl.review_frame_3d = self.frame_3d
        ctrl.review_training_case = self.save_training_case
        ctrl.review_accept = self.accept
        ctrl.review_resume = self.resume
        self.server.trigger("review_key")(self.on_key)

        @state.change("brush_mm")
        def _brush(brush_mm: float, **_: Any) -> None:
            if self._mode in ("paint", "erase"):
                effect = self.app.segmentation_editor.active_effect
                effect.set_brush_diameter(float(brush_mm), BrushDiameterMode.Absolute)

        @state.change("threshold_on", "threshold_range")
        def _threshold(threshold_on: bool, threshold_range: list[float], **_: Any) -> None:
            """Threshold-limited paint: the brush changes only voxels whose HU lie in the range."""
            modifier = self.app.segmentation_editor.active_segment_modifier
            if modifier is not None:
                modifier.set_source_volume_intensity_mask_enabled(bool(threshold_on))
                modifier.set_source_volume_intensity_mask_range(float(threshold_range[0]), float(threshold_range[1]))

        @state.change("window_preset")
        def _window(window_preset: str, **_: Any) -> None:
            if window_preset:
                self.set_window(window_preset)
                self._views_render()

        @state.change("liver_visible", "tumor_visible", "opacity")
        def _display(liver_visible: bool, tumor_visible: bool, opacity: float, **_: Any) -> None:
            display = self.case.segmentation_node.GetDisplayNode()
            display.SetSegmentVisibility(LIVER_SEGMENT.segment_id, bool(liver_visible))
            display.SetSegmentVisibility(TUMOR_SEGMENT.segment_id, bool(tumor_visible))
            display.SetOpacity(float(opacity))
            self._views_render()

    def _build_ui(self) -> None:
        state = self.state
        state.trame__title = "LiverResUNet review"
        state.has_dataset = self.dataset is not None
        state.setdefault("brush_mm", 5.0)
        state.threshold_on, state.threshold_range = False, [-50.0, 150.0]
        state.mode, state.selected, state.lesions, state.position = "view", None, [], ""
        state.window_preset = WINDOW_PRESETS[0][0]
        state.liver_visible, state.tumor_visible, state.opacity = True, True, 0.6
        state.has_worklist, state.worklist, state.case_name = self.worklist is not None, [], self.case_id
        state.loading, state.load_progress, state.load_message = False, 0, ""
        # Every key the page shows exists from the start: one first set after a browser connected (a case shown
        # once the model has run) would not reach the page's bindings.
        state.liver_ml, state.tumor_count, state.burden, state.message, state.edits = "", "", "", "", 0
        state.accepted = state.edited = state.can_undo = state.can_redo = state.offer_recovery = False
        with VAppLayout(self.server, full_height=True) as self.ui:
            client.Script(KEYS_SCRIPT)
            with v.VNavigationDrawer(permanent=True, width=400):
                self._progress_panel()
                self._worklist_panel()
                self._summary_panel()
                self._lesion_table()
                self._edit_panel()
                self._display_panel()
            with v.VMain(), html.Div(style="height: 100vh; position: relative;", raw_attrs=testid("views")):
                self.layout_manager.initialize_layout_grid(self.ui)
            self._recovery_dialog()

    def _progress_panel(self) -> None:
        """While the model segments the CT (``review --model`` without a segmentation): its progress."""
        with v.VCard(flat=True, classes="pa-2", v_if=("loading",)):
            v.VCardTitle("Segmenting")
            v.VProgressLinear(model_value=("load_progress",), height=8, color="primary", raw_attrs=testid("progress"))
            html.Div("{{ load_progress }} % · {{ load_message }}", raw_attrs=testid("progress-message"),
                     classes="text-caption")

    def _worklist_panel(self) -> None:
        """The worklist's cases and their states; Previous / Next case."""
        with v.VCard(flat=True, classes="pa-2", v_if=("has_worklist",)):
            v.VCardTitle("Worklist")
            with v.VTable(density="compact", raw_attrs=testid("worklist")), html.Tbody():
                with html.Tr(v_for="item in worklist", key="item.name",
                             classes=("item.name === case_name ? 'bg-blue-lighten-4' : ''",),
                             raw_attrs=[':data-testid="`case-${item.name}`"']):
                    html.Td("{{ item.name }}")
                    html.Td("{{ item.state }}")
            with html.Div(classes="d-flex ga-1"):
                v.VBtn("Previous case", click=self.ctrl.review_previous_case, size="small",
                       raw_attrs=testid("previous-case"))
                v.VBtn("Next case", click=self.ctrl.review_next_case, size="small", raw_attrs=testid("next-case"))

    def _summary_panel(self) -> None:
        with v.VCard(flat=True, classes="pa-2"):
            v.VCardTitle("Lesion review")
            html.Div("Liver {{ liver_ml }} mL · {{ tumor_count }} tumor(s) · burden {{ burden }} %",
                     raw_attrs=testid("summary"), classes="text-body-2")
            html.Div("{{ accepted ? 'Accepted' : (edited ? 'Edited, not accepted' : 'To review') }}",
                     raw_attrs=testid("case-state"), classes="text-caption")
            html.Div("{{ message }}", raw_attrs=testid("message"), classes="text-caption text-medium-emphasis")
            html.Div("Views centred at {{ position }}", raw_attrs=testid("position"), classes="text-caption")

    def _lesion_table(self) -> None:
        with v.VTable(density="compact", hover=True, raw_attrs=testid("lesions")):
            with html.Thead(), html.Tr():
                for title in ("#", "mL", "Ø axial mm", "state"):
                    html.Th(title)
            with html.Tbody():
                with html.Tr(v_for="lesion in lesions", key="lesion.number",
                             click="trigger('review_jump_row', [lesion.number])",
                             classes=("lesion.number === selected ? 'bg-blue-lighten-4' : ''",),
                             style="cursor: pointer;", raw_attrs=[':data-testid="`lesion-${lesion.number}`"']):
                    for field in ("number", "volume_ml", "diameter_mm", "state"):
                        html.Td(f"{{{{ lesion.{field} }}}}")
        self.server.trigger("review_jump_row")(self.jump_to)

    def _edit_panel(self) -> None:
        ctrl = self.ctrl
        with v.VCard(flat=True, classes="pa-2"), html.Div(classes="d-flex flex-wrap ga-1"):
            v.VBtn("Reject", click=ctrl.review_reject, disabled=("!selected",), color="error", size="small",
                   raw_attrs=testid("reject"))
            v.VBtn("Add lesion", click=(ctrl.review_mode, "['add']"), size="small", raw_attrs=testid("add"),
                   variant=("mode === 'add' ? 'flat' : 'outlined'",))
            v.VBtn("Paint", click=(ctrl.review_mode, "['paint']"), size="small", raw_attrs=testid("paint"),
                   variant=("mode === 'paint' ? 'flat' : 'outlined'",))
            v.VBtn("Erase", click=(ctrl.review_mode, "['erase']"), size="small", raw_attrs=testid("erase"),
                   variant=("mode === 'erase' ? 'flat' : 'outlined'",))
            v.VBtn("Undo", click=ctrl.review_undo, disabled=("!can_undo",), size="small", raw_attrs=testid("undo"))
            v.VBtn("Redo", click=ctrl.review_redo, disabled=("!can_redo",), size="small", raw_attrs=testid("redo"))
            v.VBtn("Frame 3D", click=ctrl.review_frame_3d, size="small", raw_attrs=testid("frame-3d"))
            v.VBtn("Save", click=ctrl.review_save, size="small", color="primary", raw_attrs=testid("save"))
            v.VBtn("Save as training case", click=ctrl.review_training_case, size="small", v_if=("has_dataset",),
                   raw_attrs=testid("training-case"))
            v.VBtn("Accept", click=ctrl.review_accept, size="small", color="success", raw_attrs=testid("accept"))
        v.VCheckbox(v_model=("threshold_on",), label="Paint only within HU range", density="compact",
                    hide_details=True, classes="px-2", raw_attrs=testid("threshold"))
        v.VRangeSlider(v_model=("threshold_range",), min=-200, max=400, step=5, thumb_label=True, density="compact",
                       hide_details=True, disabled=("!threshold_on",), classes="px-4")
        v.VSlider(v_model=("brush_mm",), min=1, max=40, step=1, label="Brush (mm)", thumb_label=True,
                  density="compact", hide_details=True, classes="px-4")

    def _display_panel(self) -> None:
        with v.VCard(flat=True, classes="pa-2"):
            v.VSelect(v_model=("window_preset",), items=("window_presets", [item[0] for item in WINDOW_PRESETS]),
                      label="Window", density="compact", hide_details=True)
            v.VCheckbox(v_model=("liver_visible",), label="Liver", density="compact", hide_details=True)
            v.VCheckbox(v_model=("tumor_visible",), label="Liver tumor", density="compact", hide_details=True)
            v.VSlider(v_model=("opacity",), min=0, max=1, step=0.05, label="Opacity", density="compact",
                      hide_details=True)
            html.Div("Keys: n / p next / previous lesion · r reject · a add · ctrl+z / ctrl+y undo / redo",
                     classes="text-caption")

    def _recovery_dialog(self) -> None:
        with v.VDialog(v_model=("offer_recovery",), persistent=True, max_width=480), v.VCard():
            v.VCardTitle("Unsaved edits of this case were found")
            v.VCardText("The last session on this case ended before its edits were saved. Resume them?")
            with v.VCardActions():
                v.VBtn("Resume", click=(self.ctrl.review_resume, "[true]"), raw_attrs=testid("resume"), color="primary")
                v.VBtn("Discard", click=(self.ctrl.review_resume, "[false]"), raw_attrs=testid("discard"))
