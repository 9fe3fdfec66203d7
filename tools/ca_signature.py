#!/usr/bin/env python3
"""Alibaba Cloud API Gateway request signature (AppKey/AppSecret), written from the docs.

An independent implementation of the gateway's "digest authentication" string-to-sign
and signature, so that the Rust module (crates/renzheng-server/src/signature.rs) is
checked against something that did not come from it. Sources:

* https://www.alibabacloud.com/help/en/api-gateway/traditional-api-gateway/user-guide/use-digest-authentication-to-call-an-api
  (https://help.aliyun.com/document_detail/29475.html)
* https://help.aliyun.com/document_detail/143207.html

Rules, as the docs give them:

* string-to-sign = HTTPMethod (upper case) "\\n" Accept "\\n" Content-MD5 "\\n"
  Content-Type "\\n" Date "\\n" Headers PathAndParameters; an absent Accept, Content-MD5,
  Content-Type or Date still gets its "\\n", empty Headers adds nothing.
* Headers: the names listed in X-Ca-Signature-Headers (comma-separated), minus
  X-Ca-Signature, X-Ca-Signature-Headers, Accept, Content-MD5, Content-Type and Date,
  sorted, each as "name:value\\n" (an empty value keeps "name:"). The name is written
  as the client listed it: the gateway's own error example echoes `X-Ca-Key:...`,
  the newer doc example `x-ca-key:...`.
* PathAndParameters: the path, then, when there are query or form parameters (form
  parameters only for an application/x-www-form-urlencoded body), "?" and the
  parameters sorted by key, joined by "&", each "key=value", or just "key" when the
  value is empty; decoded, not URL-encoded; for a repeated key the first value counts.
* signature = base64(HMAC-SHA256 or HMAC-SHA1 of the UTF-8 string-to-sign, keyed by
  the AppSecret); Content-MD5 = base64(MD5(body)).

`python3 tools/ca_signature.py --vectors` prints the test vectors the Rust tests read
(crates/renzheng-server/tests/ca_signature_vectors.json).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
from urllib.parse import parse_qsl

EXCLUDED_HEADERS = {
    "x-ca-signature",
    "x-ca-signature-headers",
    "accept",
    "content-md5",
    "content-type",
    "date",
}
FORM_TYPE = "application/x-www-form-urlencoded"


def java_order(s: str) -> bytes:
    # Java's String.compareTo (the SDKs sort with a TreeMap) compares UTF-16 code units;
    # big-endian UTF-16 bytes sort the same way.
    return s.encode("utf-16-be")


def header(headers: list[list[str]], name: str) -> str | None:
    """The first value of a header, looked up case-insensitively, as HTTP does."""
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")


def headers_part(headers: list[list[str]]) -> str:
    listed = header(headers, "X-Ca-Signature-Headers") or ""
    names: list[str] = []
    seen: set[str] = set()
    for name in listed.split(","):
        name = name.strip()
        if not name or name.lower() in EXCLUDED_HEADERS or name.lower() in seen:
            continue
        seen.add(name.lower())
        names.append(name)
    names.sort(key=java_order)
    return "".join(f"{name}:{header(headers, name) or ''}\n" for name in names)


def path_and_parameters(path: str, query: str, content_type: str, body: bytes) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if content_type.split(";")[0].strip().lower() == FORM_TYPE:
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    first: dict[str, str] = {}
    for key, value in pairs:
        if key and key not in first:
            first[key] = value
    if not first:
        return path
    params = [
        k if first[k] == "" else f"{k}={first[k]}"
        for k in sorted(first, key=java_order)
    ]
    return path + "?" + "&".join(params)


def string_to_sign(
    method: str, path: str, query: str, headers: list[list[str]], body: bytes
) -> str:
    content_type = header(headers, "Content-Type") or ""
    lines = [
        method.upper(),
        header(headers, "Accept") or "",
        header(headers, "Content-MD5") or "",
        content_type,
        header(headers, "Date") or "",
    ]
    return (
        "\n".join(lines)
        + "\n"
        + headers_part(headers)
        + path_and_parameters(path, query, content_type, body)
    )


def sign(secret: str, method: str, sts: str) -> str:
    digest = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}[method]
    mac = hmac.new(secret.encode("utf-8"), sts.encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


SECRET = "renzheng-test-secret-0123456789"
KEY = "203753385"
TS = "1525872629832"
NONCE = "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44"
CA_NAMES = "x-ca-timestamp,x-ca-key,x-ca-nonce,x-ca-signature-method"


def ca_headers(method: str = "HmacSHA256", names: str = CA_NAMES) -> list[list[str]]:
    return [
        ["x-ca-key", KEY],
        ["x-ca-timestamp", TS],
        ["x-ca-nonce", NONCE],
        ["x-ca-signature-method", method],
        ["x-ca-signature-headers", names],
    ]


JSON_BODY = '{"name":"张三","idcard":"11010519491231002X"}'


def cases() -> list[dict]:
    form = "application/x-www-form-urlencoded; charset=utf-8"
    raw = [
        ("get_with_query", "GET", "/faceidcard/check", "b=2&a=1&c=x", ca_headers(), ""),
        (
            "post_json_content_md5",
            "POST",
            "/faceidcard/check",
            "",
            [
                ["Accept", "application/json"],
                ["Content-Type", "application/json; charset=utf-8"],
                ["Content-MD5", content_md5(JSON_BODY.encode("utf-8"))],
                *ca_headers(),
            ],
            JSON_BODY,
        ),
        (
            "post_form_mixed_with_query",
            "POST",
            "/http2test/test",
            "param1=test",
            [
                ["accept", "application/json; charset=utf-8"],
                ["content-type", form],
                ["date", "Wed, 09 May 2018 13:30:29 GMT+00:00"],
                *ca_headers(),
            ],
            "username=xiaoming&password=123456789",
        ),
        (
            "unicode_values",
            "GET",
            "/faceidcard/check",
            "name=%E5%BC%A0%E4%B8%89&city=%E5%8C%97%E4%BA%AC",
            ca_headers(),
            "",
        ),
        (
            "empty_values",
            "POST",
            "/faceidcard/check",
            "flag&empty=&z=9",
            [["Content-Type", form], *ca_headers()],
            "blank=&x=1",
        ),
        (
            "signed_headers_unsorted_with_custom",
            "GET",
            "/faceidcard/check",
            "",
            [
                ["x-ca-stage", "RELEASE"],
                ["x-custom-b", "bee"],
                ["x-custom-a", ""],
                *ca_headers(
                    names="x-custom-b,x-ca-stage,x-ca-nonce,x-custom-a,x-ca-key,x-ca-timestamp"
                ),
            ],
            "",
        ),
        (
            "hmac_sha1",
            "GET",
            "/faceidcard/check",
            "q=1",
            ca_headers(method="HmacSHA1"),
            "",
        ),
        (
            "mixed_case_header_names",
            "GET",
            "/app/v1/config/keys",
            "keys=TEST",
            [
                ["Accept", "application/json"],
                ["Content-Type", "application/json"],
                ["X-Ca-Key", "200000"],
                ["X-Ca-Timestamp", "1589458000000"],
                ["X-Ca-Signature-Headers", "X-Ca-Timestamp,X-Ca-Key"],
            ],
            "",
        ),
        ("path_without_params", "GET", "/faceidcard/check", "", ca_headers(), ""),
        (
            "form_plus_and_percent_space",
            "POST",
            "/faceidcard/check",
            "q=a+b",
            [["Content-Type", form], *ca_headers()],
            "name=Zhang+San&addr=No.%201%20Road&sym=%2B%26%3D",
        ),
        (
            "duplicate_keys_first_value",
            "POST",
            "/faceidcard/check",
            "k=query-first&k=query-second",
            [["Content-Type", form], *ca_headers()],
            "k=form&j=2&j=3",
        ),
        (
            "excluded_headers_listed_and_absent_header",
            "PUT",
            "/faceidcard/check",
            "",
            [
                ["Accept", "*/*"],
                ["Date", "Thu, 03 Dec 2026 07:21:28 GMT"],
                *ca_headers(
                    names="Accept,Date,X-Ca-Signature,x-ca-key,x-absent,X-CA-KEY"
                ),
            ],
            "",
        ),
        (
            "json_body_not_in_params",
            "POST",
            "/faceidcard/check",
            "a=1",
            [["Content-Type", "application/json"], *ca_headers()],
            "x=1&y=2",
        ),
        (
            "java_sort_order",
            "GET",
            "/faceidcard/check",
            "%EF%BC%81=fullwidth&%F0%9F%98%80=emoji&Z=upper&a=lower",
            ca_headers(),
            "",
        ),
    ]
    out = []
    for name, method, path, query, headers, body in raw:
        sig_method = header(headers, "X-Ca-Signature-Method") or "HmacSHA256"
        sts = string_to_sign(method, path, query, headers, body.encode("utf-8"))
        out.append(
            {
                "name": name,
                "method": method,
                "path": path,
                "query": query,
                "headers": headers,
                "body": body,
                "secret": SECRET,
                "string_to_sign": sts,
                "signature": sign(SECRET, sig_method, sts),
            }
        )
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--vectors", action="store_true", help="print the test vectors as JSON"
    )
    parser.add_argument(
        "--sign",
        action="store_true",
        help="read one request as JSON on stdin ({method, path, query, headers: [[name,"
        " value]...], body, secret, signature_method}) and print its Content-MD5,"
        " string-to-sign and signature (the API tests sign their requests so)",
    )
    args = parser.parse_args(argv)
    if args.sign:
        print(json.dumps(sign_request(json.load(sys.stdin)), ensure_ascii=False))
        return 0
    if not args.vectors:
        parser.print_help()
        return 2
    print(json.dumps(cases(), ensure_ascii=False, indent=2))
    return 0


def sign_request(req: dict) -> dict:
    body = req.get("body", "").encode("utf-8")
    headers = [list(h) for h in req.get("headers", [])]
    md5 = content_md5(body) if body else ""
    # "no_content_md5": sign as a client that sends none (a form needs none; the server
    # must refuse any other body signed so).
    if body and not req.get("no_content_md5") and header(headers, "Content-MD5") is None:
        headers.append(["Content-MD5", md5])
    sts = string_to_sign(
        req["method"], req["path"], req.get("query", ""), headers, body
    )
    method = req.get("signature_method", "HmacSHA256")
    return {
        "content_md5": md5,
        "string_to_sign": sts,
        "signature": sign(req["secret"], method, sts),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
