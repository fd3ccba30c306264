"""Send SIGTERM to a serving container while requests are provably in flight, and check them.

Each client sends the headers and half of a multipart classify request, so the server holds an
open request for it; only then does the container get SIGTERM. The script checks that the
server no longer accepts connections, sends the rest of the bodies, and requires every answer to
be 200 with a cat as top-1. Used by smoke.sh; standard library only.

    python3 sigterm_drain.py CONTAINER PORT IMAGE.jpg [CLIENTS]
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def multipart(image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="cat.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def main(container: str, port: int, image_path: str, clients: int = 4) -> int:
    body, content_type = multipart(Path(image_path).read_bytes())
    head = (
        f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    half = len(body) // 2
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(clients)]
    for sock in socks:
        sock.sendall(head + body[:half])
    time.sleep(0.3)  # let the server parse the headers and start reading the bodies

    t_term = time.monotonic()
    subprocess.run(
        ["docker", "kill", "--signal", "TERM", container], check=True, stdout=subprocess.DEVNULL
    )
    time.sleep(1.0)
    if not refuses_connections(port):
        print("FAIL: new connections are still accepted 1 s after SIGTERM")
        return 1

    failures = 0
    for i, sock in enumerate(socks, 1):
        sock.sendall(body[half:])
        status, answer = read_response(sock)
        sock.close()
        top = json.loads(answer)["results"][0]["predictions"][0] if status == 200 else None
        ok = top is not None and top["class_id"] in CAT_CLASSES
        failures += not ok
        print(
            f"  in-flight request {i}: HTTP {status}, top-1 {top and top['label']!r}"
            f"{'' if ok else '  <- FAIL'}"
        )
    print(
        f"{clients - failures}/{clients} in-flight requests answered after SIGTERM "
        f"(last {time.monotonic() - t_term:.2f} s after it); new connections refused"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], *map(int, sys.argv[4:5])))
