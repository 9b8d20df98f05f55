"""What ``import keras_zoo`` sets up without importing Keras or TensorFlow (seconds, which ``python -m keras_zoo
list`` and ``--help`` need not spend): custom layers registered when Keras arrives, and a quiet TensorFlow start.

**Layers registered on demand.** The ``.keras`` files keras_zoo writes name its custom layers
(``keras_zoo>LRN``...); Keras's safe-mode loader finds them only once :mod:`keras_zoo.layers` has run its
``@keras.saving.register_keras_serializable`` decorators, and importing that module imports Keras. So
:func:`install` registers them at once when Keras is already imported, and otherwise puts a one-shot import hook
first on :data:`sys.meta_path` that imports :mod:`keras_zoo.layers` right after the first ``import keras``
finishes. Either way the contract holds: once keras_zoo and keras are both imported, in any order,
``keras.saving.load_model(path, safe_mode=True)`` reads keras_zoo's files.

**Quiet TensorFlow start.** ``TF_CPP_MIN_LOG_LEVEL`` (TensorFlow's level for its C++ log lines: 0 all, 1 no
INFO, 2 no WARNING either, 3 no ERROR either) defaults to 2. TensorFlow 2.21 prints some lines while its libraries
load, before its logging is initialised, whatever that level says (each twice: two libraries carry them)::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796173512.867849   21296 port.cc:153] oneDNN custom operations are on. You may see ...

While ``tensorflow`` is first imported, the hook points the process's stderr file descriptor at a pipe read by a
small filter process: lines in the log format (``I0000 00:00:... file.cc:123] ...``, or LiteRT's ``INFO: ...``)
whose level the variable hides, with absl's line above and cpu_feature_guard's continuation line, are held back
(:data:`held_back`; :func:`keras_zoo.cli.setup_logging` prints them with ``-v``); every other line goes on to
stderr as it comes. A separate process, so that nothing is lost if TensorFlow aborts while loading. With
``TF_CPP_MIN_LOG_LEVEL=0`` nothing is filtered; where no filter process can be started, TensorFlow is imported as
it is. :class:`quiet_stderr` is that filter, for other native start-ups too (the exporters' LiteRT interpreter).
"""

import importlib.abc
import logging
import os
import subprocess
import sys
import tempfile
import threading

log = logging.getLogger(__name__)

TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_TF_LOG_LEVEL = "2"
SEVERITIES = "IWEF"  # the log format's level letters, in TF_CPP_MIN_LOG_LEVEL's order
# "I0000 00:00:1796173512.867849   21296 port.cc:153] ..." (absl's and glog's format)
LOG_LINE = r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+[^\s:\]]+:\d+\] "
ABSL_PREINIT = r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
# TFLite's (LiteRT's) minimal logging: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
LITE_LINE = r"^(INFO|WARNING|ERROR): "
CONTINUATIONS = (r"^To enable the following instructions: ",)  # second lines of held-back records
FILTER_WAIT_S = 10  # how long to wait for the filter to pass on the last lines

held_back = []  # the start-up lines kept off stderr, decoded (see the module notes)

# The filter process: argv[1] the lowest level letter index shown; passes lines to its stderr (the original
# stderr), writes the held-back ones to its stdout (a file the importer reads).
_FILTER = r"""
import re, sys
level = int(sys.argv[1])
log_line, preinit, lite = re.compile(rb"%s"), re.compile(rb"%s"), re.compile(rb"%s")
continuations = [re.compile(pattern) for pattern in %r]
out, held = sys.stderr.buffer, sys.stdout.buffer
holding = False
for line in sys.stdin.buffer:
    text = line.rstrip(b"\r\n")
    match = log_line.match(text) or lite.match(text)
    if preinit.match(text):
        holding = level >= 1
    elif match:
        holding = %r.index(match.group(1).decode()[0]) < level
    else:
        holding = holding and any(pattern.match(text) for pattern in continuations)
    (held if holding else out).write(line)
    (held if holding else out).flush()
""" % (LOG_LINE, ABSL_PREINIT, LITE_LINE, tuple(pattern.encode() for pattern in CONTINUATIONS), SEVERITIES)

_lock = threading.RLock()
_layers_registered = False


def tf_log_level():
    """The C++ log level TensorFlow is told (``TF_CPP_MIN_LOG_LEVEL``, 0 where it is not a number)."""
    try:
        return max(0, int(os.environ.get(TF_LOG_LEVEL, "0")))
    except ValueError:
        return 0


def register_layers():
    """Import :mod:`keras_zoo.layers` (its decorators register the custom layers); once."""
    global _layers_registered
    with _lock:
        if _layers_registered:
            return
        _layers_registered = True
    try:
        import keras_zoo.layers  # noqa: F401
    except Exception as error:  # a broken install must not break the user's own `import keras`
        log.warning("keras_zoo's custom layers are not registered (%s: %s); keras_zoo's .keras files will not "
                    "load", type(error).__name__, error)


class quiet_stderr:
    """Context manager: while it is open, stderr's file descriptor goes through the filter process (see the
    module notes); the lines it held back are appended to :data:`held_back`. Does nothing where the level
    hides nothing or no filter can be started."""

    def __enter__(self):
        self._saved = None
        level = tf_log_level()
        if level == 0 or not sys.executable:
            return self
        try:
            sys.stderr.flush()
            self._held = tempfile.TemporaryFile()
            self._process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER, str(level)],
                                             stdin=subprocess.PIPE, stdout=self._held)
            self._saved = os.dup(2)
            os.dup2(self._process.stdin.fileno(), 2)
        except (OSError, ValueError, AttributeError) as error:  # no stderr descriptor, no interpreter...
            log.debug("TensorFlow's start-up lines are not filtered: %s", error)
            self._close()
        return self

    def _close(self):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None
        process = getattr(self, "_process", None)
        if process is not None:
            process.stdin.close()
            try:
                process.wait(timeout=FILTER_WAIT_S)
            except subprocess.TimeoutExpired:  # a child of the import holds the pipe: the filter serves it
                log.debug("the start-up filter is still passing lines on")
            self._process = None
        held = getattr(self, "_held", None)
        if held is not None:
            held.seek(0)
            held_back.extend(line.decode("utf-8", "replace").rstrip("\r\n") for line in held)
            held.close()
            self._held = None

    def __exit__(self, *exc):
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        self._close()
        return False


class _WrappedLoader(importlib.abc.Loader):
    """A module's own loader, with ``around`` (a context manager factory) around its execution and ``after``
    called once it has run."""

    def __init__(self, loader, around=None, after=None):
        self._loader, self._around, self._after = loader, around, after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        spec = getattr(module, "__spec__", None)
        if spec is not None:
            spec.loader = self._loader  # the module keeps its own loader (resources, reloads)
        module.__loader__ = self._loader
        if self._around is not None:
            with self._around():
                self._loader.exec_module(module)
        else:
            self._loader.exec_module(module)
        if self._after is not None:
            self._after()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _Hooks(importlib.abc.MetaPathFinder):
    """First on :data:`sys.meta_path`: wraps the loaders of ``keras`` (register the layers after it) and
    ``tensorflow`` (:class:`quiet_stderr` around it), the first time each is imported."""

    def __init__(self):
        self.pending = {"keras": dict(after=register_layers), "tensorflow": dict(around=quiet_stderr)}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.pending or path is not None:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        hooks = self.pending[fullname]
        spec.loader = _WrappedLoader(spec.loader, around=hooks.get("around"),
                                     after=lambda: self._done(fullname, hooks.get("after")))
        return spec

    def _done(self, fullname, after):
        with _lock:
            self.pending.pop(fullname, None)
            if not self.pending and self in sys.meta_path:
                sys.meta_path.remove(self)
        if after is not None:
            after()


def install():
    """What ``import keras_zoo`` does (see the module notes); once per process."""
    os.environ.setdefault(TF_LOG_LEVEL, DEFAULT_TF_LOG_LEVEL)
    with _lock:
        if any(isinstance(finder, _Hooks) for finder in sys.meta_path):
            return
        hooks = _Hooks()
        for name in list(hooks.pending):
            if name in sys.modules:
                del hooks.pending[name]
        if hooks.pending:
            sys.meta_path.insert(0, hooks)
    if "keras" in sys.modules:
        register_layers()
