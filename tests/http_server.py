"""A loopback HTTP server for download tests: serves a directory, honours Range, can cut transfers short.

    with serve(directory) as server:
        server.fail_after = 1000          # the next transfer stops after 1000 bytes (then normal again)
        url = server.url + "/file.bin"
        ...
        server.requests                   # [(path, Range header or None), ...]
"""

import contextlib
import http.server
import pathlib
import re
import threading
import time


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        server = self.server
        range_header = self.headers.get("Range")
        with server.lock:
            server.requests.append((self.path, range_header))
            fail_after, server.fail_after = server.fail_after, None
        path = server.root / self.path.lstrip("/").split("?")[0]
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header or "")
        if match and server.ranges:
            start = int(match.group(1))
            end = int(match.group(2)) + 1 if match.group(2) else len(data)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            data = data[start:end]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes" if server.ranges else "none")
        self.end_headers()
        sent = data if fail_after is None else data[:fail_after]
        for offset in range(0, len(sent), server.chunk):
            self.wfile.write(sent[offset:offset + server.chunk])
            self.wfile.flush()
            if server.delay:
                time.sleep(server.delay)
        if fail_after is not None:
            self.close_connection = True
            self.connection.shutdown(2)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root, *, ranges=True, delay=0.0, chunk=16384):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = pathlib.Path(root)
        self.ranges = ranges          # False: ignore Range (always 200 with the whole file)
        self.delay = delay            # seconds to sleep after each chunk (slow transfers)
        self.chunk = chunk
        self.fail_after = None        # bytes after which the NEXT transfer is cut (one-shot)
        self.requests = []
        self.lock = threading.Lock()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, name):
        """How many requests asked for ``name``."""
        return sum(1 for path, _ in self.requests if path.lstrip("/") == name)


@contextlib.contextmanager
def serve(root, **options):
    """Run a :class:`Server` for ``root`` in a background thread for the duration of the block."""
    server = Server(root, **options)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
