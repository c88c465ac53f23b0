"""The explorer as a web app: ``notebooks/90_explorer.ipynb`` served by Voila (code hidden) or JupyterLab.

Two parts, used by the notebook, by ``make app`` / ``make lab`` and by ``tests/test_browser.py``:

* **what the page shows** (:func:`resolve_settings`, :func:`explorer_view`): the notebook's parameters are
  papermill's when Make runs it, but under Voila they are the notebook's defaults and relative paths would
  resolve against ``notebooks/``. So paths are anchored at the project root, and the variables that
  ``make app`` and the tests set (``DENSENET_INTERP_PROFILE``, ``DENSENET_INTERP_RESULTS``,
  ``DENSENET_INTERP_DATA``, ``DENSENET_INTERP_MURA_DIR``) win; ``make lab`` sets none of them. Models are only ever loaded from ``results/<profile>/models/``, never
  trained; without them the page says to run ``make reproduce``.
* **servers** (:class:`Server`, :func:`start_voila`, :func:`start_lab`): a child process on a free
  ``127.0.0.1`` port, waited for until it answers HTTP, and stopped with every process it started. Kernels
  run in sessions of their own, so they are found through the process tree, not the process group.

Command line: ``densenet-interp app [voila|lab] [--port N]`` (:func:`serve`) serves until Ctrl-C.
"""

from __future__ import annotations

import html
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..paths import PROJECT_ROOT, Layout, anchored
from ..profiles import MODEL_SETS, get_profile

NOTEBOOK = PROJECT_ROOT / "notebooks" / "90_explorer.ipynb"
KERNEL = "densenet-interp"  # the notebook's kernelspec; `make venv` installs it
HOST = "127.0.0.1"  # servers never listen on any other address
VOILA_PORT, LAB_PORT = 8866, 8888  # tried first when no port is given
EXPLORER_CLASS = "densenet-interp-explorer"  # CSS classes the browser test looks for
MESSAGE_CLASS = "densenet-interp-message"


# ----------------------------------------------------------------------------------------------------------
# What the page shows
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplorerSettings:
    """Where the explorer finds its models and images, resolved to absolute paths."""

    profile: str
    results: Path  # results/<profile>
    mura_dir: Path | None  # the MURA-v1.1 folder for validation images (None: the case images only)

    def model_files(self) -> dict[str, Path]:
        """``model set -> model.keras`` for the trained model sets, in the paper's Table 1 order."""
        layout = Layout(self.results)
        return {name: layout.run(name).model for name in MODEL_SETS if layout.run(name).model.is_file()}


def _anchored(path: str | os.PathLike) -> Path:
    """A notebook path as an absolute path: relative paths are relative to the project root."""
    return anchored(path).resolve()


def resolve_settings(
    profile: str, results_dir: str | os.PathLike, mura_dir: str | os.PathLike | None
) -> ExplorerSettings:
    """The notebook's parameters, overridden only by the variables that ``make app`` (or a test) sets.

    ``DENSENET_INTERP_PROFILE`` picks the profile: ``densenet-interp app voila`` sets it, since a Voila page
    has no parameters cell to edit. A plain ``PROFILE`` left in a shell is not read, and ``make lab`` starts
    kernels without any of these variables, so in JupyterLab the parameters cell alone decides. The results
    folder is ``$DENSENET_INTERP_RESULTS/<profile>`` when that variable is set, when the profile is another
    than the notebook's (its paths are then another profile's) or when ``results_dir`` is empty; otherwise
    ``results_dir``, anchored at the project root. The MURA folder is ``$DENSENET_INTERP_MURA_DIR`` if set,
    else for phantom profiles the generated one in the data layout (under the same rule, with
    ``DENSENET_INTERP_DATA``), else ``mura_dir``.
    """
    name = os.environ.get("DENSENET_INTERP_PROFILE") or profile
    config = get_profile(name)
    other_profile = name != profile
    layout = Layout.for_profile(name)
    results = (
        layout.results
        if os.environ.get("DENSENET_INTERP_RESULTS") or other_profile or not results_dir
        else _anchored(results_dir)
    )
    if os.environ.get("DENSENET_INTERP_MURA_DIR"):
        mura = _anchored(os.environ["DENSENET_INTERP_MURA_DIR"])
    elif (config.phantom or config.smoke) and (
        os.environ.get("DENSENET_INTERP_DATA") or other_profile or not mura_dir
    ):
        mura = layout.phantom_dir / "MURA-v1.1"
    else:
        mura = _anchored(mura_dir) if mura_dir else None
    return ExplorerSettings(name, results, mura)


def radiograph_kind(config) -> str:
    """What the page's radiographs are, for its banner: synthetic on the phantom (paper-smoke included: the
    real-MURA code path on generated data), real only on real MURA."""
    synthetic = config.phantom or config.smoke
    return "synthetic radiographs, not patients" if synthetic else "real radiographs (MURA)"


def _shown_path(path: Path) -> str:
    """``path`` relative to the project root where it lies inside it (shorter on the page)."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr (file descriptor 2) pointed at /dev/null meanwhile.

    TensorFlow 2.21 writes absl/oneDNN notices to descriptor 2 at import, whatever TF_CPP_MIN_LOG_LEVEL says;
    a kernel forwards them into the page, where they would stand as a red block above the app. Python
    errors are raised as usual; only the C++ notices are lost.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _message(text_html: str):
    import ipywidgets as w

    message = w.HTML(f"<p style='font-size: 1.2em'>{text_html}</p>")
    message.add_class(MESSAGE_CLASS)
    return message


def explorer_view(
    profile: str = "mini",
    results_dir: str | os.PathLike = "",
    mura_dir: str | os.PathLike | None = None,
    n_validation: int = 12,
    *,
    strict: bool = False,
):
    """The explorer's widget (a banner: research use only, the data and the models; then the explorer), or a
    message.

    The message says what to do when there are no trained models yet (run ``make reproduce``) or when the
    explorer cannot start (a model file that does not load, no images). ``strict=True`` raises instead,
    so that a headless run of the notebook by Make fails on a broken explorer.
    """
    import ipywidgets as w

    from ..errors import ModelFileError, UserFacingError

    settings = resolve_settings(profile, results_dir, mura_dir)
    config = get_profile(settings.profile)
    models = settings.model_files()
    command = "make reproduce" + ("" if settings.profile == "mini" else f" PROFILE={settings.profile}")
    if not models:
        if strict:
            raise ModelFileError(
                f"no trained models; expected <model set>/model.keras for one of {', '.join(MODEL_SETS)}",
                path=Layout(settings.results).models_dir,
            )
        return _message(
            f"<b>No trained models in <code>{html.escape(_shown_path(settings.results))}/</code></b> — run "
            f"<code>{command}</code> first, then reload this page."
        )
    _import_tensorflow_quietly()
    from .widgets import Explorer, default_gallery

    try:
        gallery = default_gallery(config, settings.mura_dir, n_validation=n_validation)
        explorer = Explorer(
            models, gallery, image_size=config.image_size, outlines=gallery.outlines, truth=gallery.truth,
            body_parts=gallery.body_parts, data_label=config.data_label,
        )  # fmt: skip
    except (UserFacingError, ValueError) as exc:
        if strict:
            raise
        return _message(f"<b>The explorer cannot start:</b> {html.escape(str(exc))}")
    warning = radiograph_kind(config)
    caption = w.HTML(
        f"<div style='border-left: 4px solid #c0392b; padding: 4px 8px; background: #fdf2f0'>"
        f"<b>Research use only — not for clinical use.</b> {warning}.</div>"
        f"Profile <b>{html.escape(settings.profile)}</b> — {html.escape(config.data_label)}; "
        f"{len(models)} model sets from <code>{html.escape(_shown_path(Layout(settings.results).models_dir))}</code>, "
        f"{len(gallery)} images."
    )
    view = w.VBox([caption, explorer.widget])
    view.add_class(EXPLORER_CLASS)
    return view


# ----------------------------------------------------------------------------------------------------------
# Servers
# ----------------------------------------------------------------------------------------------------------
def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens there on 127.0.0.1, else a port the system says is free."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError(f"no free port on {HOST}")


class Server:
    """A server running as a child process: ``url`` to open, :meth:`wait_ready`, :meth:`stop`.

    Output goes to ``log`` (a file path) or, when ``log`` is None, to this process's terminal. Use it as a
    context manager so that the server and every process it started are stopped on the way out.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        url: str,
        ready_url: str,
        *,
        env: Mapping[str, str] | None = None,
        unset: Sequence[str] = (),
        cwd: str | os.PathLike | None = None,
        log: str | os.PathLike | None = None,
    ):
        self.name, self.url, self.ready_url = name, url, ready_url
        self.token: str | None = None  # JupyterLab's login token, where there is one
        self.command = [str(part) for part in command]
        self.log = Path(log) if log is not None else None
        inherited = {k: v for k, v in os.environ.items() if k not in unset}
        full_env = {"JUPYTER_PLATFORM_DIRS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **inherited, **(env or {})}
        output = open(self.log, "ab") if self.log is not None else None  # closed in stop()
        self._output = output
        self.process = subprocess.Popen(
            self.command,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,  # a terminal's Ctrl-C reaches only us; stop() then ends it in order
        )

    def kernels(self) -> list:
        """The kernel processes this server runs now (``psutil.Process``), found through its process tree."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        found = []
        for child in children:
            try:
                if any("ipykernel" in part for part in child.cmdline()):
                    found.append(child)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def log_tail(self, chars: int = 4000) -> str:
        if self.log is None or not self.log.is_file():
            return "(output went to the terminal)"
        return self.log.read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout: float = 60.0) -> Server:
        """Return once ``ready_url`` answers HTTP 200; RuntimeError (with the server's output) otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.process.returncode} before it was ready "
                    f"({' '.join(self.command)}):\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"{self.name} did not answer {self.ready_url} within {timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``grace`` s), then any kernel it left behind."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        alive = [child for child in children if child.is_running()]
        for child in alive:
            child.terminate()
        _, alive = psutil.wait_procs(alive, timeout=grace)
        for child in alive:
            child.kill()
        psutil.wait_procs(alive, timeout=grace)
        if self._output is not None:
            self._output.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def ensure_kernel(install: bool = False) -> None:
    """Check that this Python has the notebook's kernel ``densenet-interp``; with ``install``, install it
    into this environment (``--sys-prefix``, as ``make venv`` does) where it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL in KernelSpecManager().find_kernel_specs():
        return
    if not install:
        raise RuntimeError(
            f"no Jupyter kernel {KERNEL!r} for {sys.executable}; run `make venv` (it installs it)"
        )
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
         "--display-name", "Python (densenet-interp)"],
        check=True, capture_output=True,
    )  # fmt: skip


WEBSOCKET_MAX_BYTES = 100 * 2**20
"""The largest message the page may send its kernel: above the explorer's upload limit (64 MB) and its framing."""
CULL_IDLE_SECONDS = 600
"""A page's kernel is shut down this long after its tab was closed (an open tab keeps its kernel)."""


def start_voila(
    notebook: str | os.PathLike = NOTEBOOK,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    log: str | os.PathLike | None = None,
    cull_idle: float = CULL_IDLE_SECONDS,
) -> Server:
    """Serve ``notebook`` as a Voila app (sources hidden, Voila's default) on 127.0.0.1; not yet ready.

    Every page starts a kernel holding its models; a kernel that has no page connected and has been idle for
    ``cull_idle`` seconds is shut down (Jupyter's culling, checked every ``cull_idle / 10`` s, at most a
    minute), so closed tabs do not keep their memory.
    """
    port = port or free_port()
    interval = max(1, min(60, round(cull_idle / 10)))
    command = [
        sys.executable, "-m", "voila", Path(notebook).resolve(), "--no-browser", f"--Voila.ip={HOST}",
        f"--port={port}", "--Voila.port_retries=0", "--show_tracebacks=True",
        f"--MappingKernelManager.cull_idle_timeout={int(cull_idle)}",
        f"--MappingKernelManager.cull_interval={interval}", "--MappingKernelManager.cull_connected=False",
        # an upload travels to the kernel in one websocket message; Tornado's default cap is 10 MB
        f'--Voila.tornado_settings={{"websocket_max_message_size": {WEBSOCKET_MAX_BYTES}}}',
    ]  # fmt: skip
    base = f"http://{HOST}:{port}"
    return Server("voila", command, f"{base}/", f"{base}/voila/static/voila.js", env=env, log=log)


def start_lab(
    root_dir: str | os.PathLike = PROJECT_ROOT,
    *,
    port: int | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    unset: Sequence[str] = (),
    log: str | os.PathLike | None = None,
) -> Server:
    """Start JupyterLab on ``root_dir`` (the project: ``results/`` and ``lib/`` stay in reach) on 127.0.0.1
    with ``token`` (random if None); not yet ready. ``unset`` names variables its kernels must not inherit.

    ``url`` opens the file browser logged in, in ``notebooks/`` where ``root_dir`` has one; open a notebook at
    ``/lab/tree/<path>?token=<token>``.
    """
    port = port or free_port()
    token = token or secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.root_dir={Path(root_dir).resolve()}",
        f"--IdentityProvider.token={token}",
        # offline by design: no extension manager, news or update checks reaching for the network
        "--LabApp.extension_manager=readonly", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI run as root; Jupyter refuses that otherwise
    base = f"http://{HOST}:{port}"
    start = "/lab/tree/notebooks" if (Path(root_dir) / "notebooks").is_dir() else "/lab"
    server = Server("jupyterlab", command, f"{base}{start}?token={token}", f"{base}/api/status?token={token}",
                    env=env, unset=unset, log=log)  # fmt: skip
    server.token = token
    return server


# ----------------------------------------------------------------------------------------------------------
# Serving until Ctrl-C: make app / make lab
# ----------------------------------------------------------------------------------------------------------
def _serve(server: Server) -> int:
    """Run ``server`` until it exits, Ctrl-C or SIGTERM; then stop it and every kernel it started."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where a shell started us ignoring it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # SystemExit unwinds through `with server`
    with server:
        server.wait_ready(timeout=120)
        print(f"==> {server.name}: {server.url}  (Ctrl-C stops it)", flush=True)
        try:
            return server.process.wait()
        except KeyboardInterrupt:
            print(f"\n==> stopping {server.name}", flush=True)
            return 0


APP_VARIABLES = ("DENSENET_INTERP_PROFILE", "DENSENET_INTERP_RESULTS", "DENSENET_INTERP_DATA",
                 "DENSENET_INTERP_MURA_DIR", "PROFILE")  # fmt: skip
"""What :func:`resolve_settings` (and :func:`~densenet_interp.profiles.get_profile`) could read from the
environment: set for the Voila page by ``make app``, removed from JupyterLab's kernels by ``make lab``."""


def serve(server: str = "voila", port: int | None = None) -> int:
    """``densenet-interp app [voila|lab]``: serve the explorer (Voila) or JupyterLab until Ctrl-C.

    Voila gets the profile explicitly (``DENSENET_INTERP_PROFILE``: ``$PROFILE`` or mini). JupyterLab starts at
    the project root, shows ``notebooks/``, and its kernels see none of :data:`APP_VARIABLES`: each notebook
    runs what its parameters cell says.
    """
    ensure_kernel()
    if server == "voila":
        name = os.environ.get("DENSENET_INTERP_PROFILE") or get_profile().name
        settings = resolve_settings(name, "", None)
        if not settings.model_files():
            print(f"note: no trained models in {settings.results}; the page will say to run make reproduce")
        return _serve(start_voila(port=port or free_port(VOILA_PORT), env={"DENSENET_INTERP_PROFILE": name}))
    return _serve(start_lab(port=port or free_port(LAB_PORT), unset=APP_VARIABLES))
