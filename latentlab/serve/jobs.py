"""Projections the page starts: parsed requests, a worker thread per job, progress events, cancellation.

A job runs in its own thread so that a slow projection in one tab never holds up another tab's renders. Its
events (``progress`` and finally ``done`` or ``error``) go to a queue that the HTTP layer streams to the page as
server-sent events. When the page goes away mid-projection the stream is cancelled, the job's ``cancel``
event is set, and the worker stops at its next step (the projector's and the tuning's ``on_step`` hooks), so
the work is freed rather than finished for no one.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..validate import InvalidInput, number, string

if TYPE_CHECKING:
    from .models import CodeStore, ServedModel

METHODS = ("encoder", "optimize")  # where the search starts: the encoder's code, or w_avg
MAX_STEPS = 5000
MAX_PTI_STEPS = 1000


class Cancelled(Exception):
    """Raised inside a job's step hook once its ``cancel`` event is set."""


@dataclass(frozen=True)
class ProjectRequest:
    """A projection the page asked for: model, uploaded image, start, steps, space and whether to tune (PTI)."""

    model: str
    upload: str
    method: str = "encoder"
    steps: int = 100
    space: str = "w+"
    pti: bool = False
    pti_steps: int = 350


def parse_project_request(x: Any, model_of: Callable[[Any], ServedModel]) -> ProjectRequest:
    """A :class:`ProjectRequest` from the page's JSON; InvalidInput for anything wrong, with what was wrong.

    ``model_of`` looks a model up by name and refuses unknown ones (``Editor.model``).
    """
    if not isinstance(x, dict):
        raise InvalidInput("the projection request must be a JSON object")
    extra = sorted(set(x) - {"model", "upload", "method", "steps", "space", "pti", "pti_steps"})
    if extra:
        raise InvalidInput(f"unknown projection field(s): {', '.join(map(str, extra))[:200]}")
    served = model_of(x.get("model"))
    model = served.name
    upload = string(x.get("upload"), "upload")
    method = string(x.get("method", "encoder"), "method", choices=METHODS)
    if method == "encoder" and served.encoder_file is None:
        raise InvalidInput(f"model {model!r} has no encoder: choose method 'optimize' (or start the server with "
                           f"--encoder, made by `latentlab encoder train`)")  # fmt: skip
    steps = int(number(x.get("steps", 100), "steps", low=0, high=MAX_STEPS, integer=True))
    if steps == 0 and method == "optimize":
        raise InvalidInput("steps must be at least 1 when optimizing from w_avg (0 steps is the encoder alone)")
    space = string(x.get("space", "w+"), "space", choices=("w", "w+"))
    pti = x.get("pti", False)
    if not isinstance(pti, bool):
        raise InvalidInput(f"pti must be true or false, got {pti!r:.40}")
    pti_steps = int(number(x.get("pti_steps", 350), "pti_steps", low=1, high=MAX_PTI_STEPS, integer=True))
    return ProjectRequest(model, upload, method, steps, space, pti, pti_steps)


class ProjectionJob:
    """One projection in a worker thread. Read :attr:`events` (dicts with ``"event"``); set :attr:`cancel`.

    Args:
        model: the served model.
        target: ``[1, C, R, R]`` in [-1, 1] at the model's resolution.
        request: what to do.
        store: where the result's code goes (its id is in the ``done`` event).
        tools: shared, lazily built helpers (the projector's loss, W statistics, LPIPS for PTI): a
            :class:`Tools`.
        every: send a ``progress`` event every this many steps (and at the last).
        upload: the :class:`~latentlab.serve.models.Upload` the target came from, stored with the result.
    """

    def __init__(self, model: ServedModel, target: torch.Tensor, request: ProjectRequest, store: CodeStore,
                 tools: Tools, every: int = 5, upload: Any = None):  # fmt: skip
        self.model, self.target, self.request, self.store, self.tools = model, target, request, store, tools
        self.upload = upload  # the Upload it came from, kept with the code (the photo export pastes into it)
        self.every = max(1, int(every))
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.cancel = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"latentlab-project-{model.name}", daemon=True)

    def start(self) -> ProjectionJob:
        self.thread.start()
        return self

    def _check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def _progress(self, stage: str, step: int, steps: int, loss: float | None) -> None:
        self._check()
        if step % self.every == 0 or step == steps:
            self.events.put({"event": "progress", "stage": stage, "step": step, "steps": steps,
                             "loss": None if loss is None else round(float(loss), 5)})  # fmt: skip

    def _run(self) -> None:
        try:
            self.events.put(self._project())
        except Cancelled:
            self.events.put({"event": "cancelled"})
        except (InvalidInput, ValueError) as e:
            self.events.put({"event": "error", "message": str(e)})
        except Exception as e:  # noqa: BLE001 - the page must hear of any failure; the server keeps serving
            self.events.put({"event": "error", "message": f"the projection failed: {type(e).__name__}: {e}"})
        finally:
            self.finished.set()

    def _project(self) -> dict[str, Any]:
        from ..projection.encoder import encode
        from ..projection.projector import ProjectConfig, project_batch
        from .models import Entry

        r, m, G = self.request, self.model, self.model.G
        t0 = time.perf_counter()
        init = None
        if r.method == "encoder":
            self._progress("encoder", 0, 1, None)
            with torch.no_grad():
                init = encode(m.encoder(), self.target, G=G)
            self._progress("encoder", 1, 1, None)
        loss, loss_name = self.tools.loss(m)
        config = ProjectConfig(space=r.space, steps=r.steps, loss=loss_name,
                               init="encoder" if init is not None else "w_avg")  # fmt: skip
        proj = project_batch(G, self.target.to(G.w_avg.device), loss, config, w_stats=self.tools.w_stats(m),
                             on_step=lambda s, losses: self._progress("optimize", s + 1, r.steps,
                                                                      float(losses.mean())),
                             init=init)  # fmt: skip
        ws, noise, images, tuned = proj.ws, proj.noise, proj.images, None
        if r.pti:
            from ..projection.tune import TuneConfig, auto_lpips_threshold, tune

            cfg = TuneConfig(steps=r.pti_steps, lpips_threshold=auto_lpips_threshold(G.img_resolution))
            tuned = tune(G, self.target, ws, self.tools.lpips_alex(), cfg,
                         on_step=lambda s, lp, l2: self._progress("tune", s, r.pti_steps, lp))  # fmt: skip
            noise = None  # the tuning renders the pivot with G's constant noise
            with torch.no_grad():
                images = tuned.G.synthesis(tuned.pivot.to(G.w_avg.device), noise_mode="const").cpu()
        self._check()
        mse = float((images - self.target).square().mean())
        psnr = 10 * torch.log10(torch.tensor(4 / max(mse, 1e-12))).item()  # finite: the event is JSON
        meta = {"method": r.method, "steps": r.steps, "space": r.space, "pti": r.pti, "psnr": round(psnr, 2),
                "seconds": round(time.perf_counter() - t0, 2), "loss": loss_name}  # fmt: skip
        entry = Entry(m.name, ws[:1].clone(), None if noise is None else [None if x is None else x[:1] for x in noise],
                      generator=None if tuned is None else tuned.G, meta=meta, upload=self.upload)  # fmt: skip
        code = self.store.put(entry)
        return {"event": "done", "code": code, **meta}


class Tools:
    """Helpers shared by every job of a server, each built once on first use (thread-safe)."""

    def __init__(self, loss: str = "auto"):
        self._loss_name = loss
        self._lock = threading.Lock()
        self._losses: dict[int, tuple[torch.nn.Module, str]] = {}
        self._stats: dict[str, tuple[torch.Tensor, float]] = {}
        self._lpips: torch.nn.Module | None = None

    def loss(self, model: ServedModel) -> tuple[torch.nn.Module, str]:
        """The projector's distance at the model's resolution (``auto``: LPIPS-VGG, or the offline choice)."""
        from ..perceptual import build_loss

        res = model.G.img_resolution
        with self._lock:
            if res not in self._losses:
                module = build_loss(self._loss_name, download=False, log=lambda s: None, resolution=res)
                self._losses[res] = (module.to(model.G.w_avg.device), getattr(module, "name", self._loss_name))
            return self._losses[res]

    def w_stats(self, model: ServedModel) -> tuple[torch.Tensor, float]:
        from ..projection.projector import w_statistics

        with self._lock:
            if model.name not in self._stats:
                self._stats[model.name] = w_statistics(model.G)
            return self._stats[model.name]

    def lpips_alex(self) -> torch.nn.Module:
        from ..perceptual import LPIPSLoss

        with self._lock:
            if self._lpips is None:
                self._lpips = LPIPSLoss("alex")
            return self._lpips
