#!/usr/bin/env python3
"""Calls POST /faceidcard/check signed the way Alibaba's Python demo signs.

The demo is aliyun/api-gateway-demo-sign-python (``aliyun-api-gateway-demo-sign3``).
This is an independent client, written from reading it, with the standard library
only; what it reproduces:

* the headers it sends: ``X-Ca-Timestamp`` (epoch milliseconds), ``X-Ca-Key``,
  ``X-Ca-Nonce`` (a UUID), ``Content-Type``, ``Accept: application/json``; no
  ``X-Ca-Signature-Method`` (the gateway's default, HmacSHA256), unless the caller asks
  for HmacSHA1 here, an extension: the header then starts with ``X-Ca-`` and is signed
  like the others;
* the signed headers: every header whose name starts with ``X-Ca-``, in Python's sorted
  order, spelled as sent (``X-Ca-Key,X-Ca-Nonce,X-Ca-Timestamp``);
* its two body modes: a form (``application/x-www-form-urlencoded``, no charset; the
  fields enter the string-to-sign, no ``Content-MD5``) and a "stream"
  (``application/octet-stream``, which is how the demo sends JSON: ``Content-MD5`` of
  the bytes, no parameters signed);
* the signature: base64 of the HMAC of the UTF-8 string-to-sign.

Usage::

    gateway_client.py URL APP_KEY APP_SECRET stream|form [HmacSHA256|HmacSHA1]

The fields come from the environment: RZ_NAME, RZ_ID_CARD, RZ_IMAGE (base64).
RZ_REPEAT=N sends the same signed request N times (a replay). Prints one JSON line:
``{"client", "string_to_sign", "responses": [{"status", "headers", "body"}]}``.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import urllib.parse
import uuid

PATH = "/faceidcard/check"
CONTENT_TYPE_FORM = "application/x-www-form-urlencoded"
CONTENT_TYPE_STREAM = "application/octet-stream"
ACCEPT = "application/json"
HMACS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}


def string_to_sign(method, headers, path, params):
    """METHOD, Accept, Content-MD5, Content-Type, Date, then the X-Ca-* headers, then the
    path with the sorted parameters (an empty value: the key alone). Sets
    X-Ca-Signature-Headers, as the demo does while it composes."""
    lines = [method]
    for name in ("Accept", "Content-MD5", "Content-Type", "Date"):
        lines.append(headers.get(name) or "")
    signed = sorted(name for name in headers if name.startswith("X-Ca-"))
    text = "\n".join(lines) + "\n"
    text += "".join(f"{name}:{headers[name]}\n" for name in signed)
    headers["X-Ca-Signature-Headers"] = ",".join(signed)
    resource = path
    if params:
        resource += "?" + "&".join(
            f"{k}={params[k]}" if params[k] else k for k in sorted(params)
        )
    return text + resource


def main(argv):
    if len(argv) not in (5, 6) or argv[4] not in ("stream", "form"):
        print(__doc__, file=sys.stderr)
        return 2
    url, app_key, app_secret, mode = argv[1:5]
    algorithm = argv[5] if len(argv) == 6 else "HmacSHA256"
    fields = {
        "name": os.environ.get("RZ_NAME", ""),
        "idCard": os.environ.get("RZ_ID_CARD", ""),
        "image": os.environ.get("RZ_IMAGE", ""),
    }
    headers = {
        "X-Ca-Timestamp": str(int(time.time() * 1000)),
        "X-Ca-Key": app_key,
        "X-Ca-Nonce": str(uuid.uuid4()),
        "Accept": ACCEPT,
    }
    if algorithm != "HmacSHA256":
        headers["X-Ca-Signature-Method"] = algorithm
    if mode == "form":
        headers["Content-Type"] = CONTENT_TYPE_FORM
        body = urllib.parse.urlencode(fields).encode()
        params = dict(fields)
    else:
        headers["Content-Type"] = CONTENT_TYPE_STREAM
        body = json.dumps(fields).encode("utf-8")
        headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
        params = {}
    sts = string_to_sign("POST", headers, PATH, params)
    digest = hmac.new(app_secret.encode("utf-8"), sts.encode("utf-8"), HMACS[algorithm])
    headers["X-Ca-Signature"] = base64.b64encode(digest.digest()).decode()

    target = urllib.parse.urlsplit(url)
    responses = []
    for _ in range(int(os.environ.get("RZ_REPEAT", "1"))):
        connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            connection.request("POST", PATH, body=body, headers=headers)
            response = connection.getresponse()
            responses.append(
                {
                    "status": response.status,
                    # Header values arrive as latin-1 text; the demo hands them on as is.
                    "headers": {k.lower(): v for k, v in response.getheaders()},
                    "body": response.read().decode("utf-8"),
                }
            )
        finally:
            connection.close()
    client = f"python demo-sign3 style ({mode}, {algorithm})"
    print(json.dumps({"client": client, "string_to_sign": sts, "responses": responses}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
