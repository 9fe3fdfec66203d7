"""Tests of tools/ca_signature.py, the doc-derived API-gateway signature.

The committed vectors must be exactly what the script prints now, so the Rust tests
(crates/renzheng-server/src/signature.rs) are known to check against this script.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1]
VECTORS = (
    TOOLS.parent / "crates" / "renzheng-server" / "tests" / "ca_signature_vectors.json"
)
sys.path.insert(0, str(TOOLS))

import ca_signature as cs


def test_committed_vectors_are_the_script_output():
    out = subprocess.run(
        [sys.executable, str(TOOLS / "ca_signature.py"), "--vectors"],
        check=True,
        capture_output=True,
        text=True,
        encoding="utf-8",
    ).stdout
    assert VECTORS.read_text(encoding="utf-8") == out
    assert len(json.loads(out)) >= 10


def test_doc_example_string_to_sign():
    # The form example of the digest-authentication doc (its signature uses a secret
    # the doc does not give, so only the string-to-sign is compared).
    headers = [
        ["accept", "application/json; charset=utf-8"],
        ["content-type", "application/x-www-form-urlencoded; charset=utf-8"],
        ["date", "Wed, 09 May 2018 13:30:29 GMT+00:00"],
        ["x-ca-timestamp", "1525872629832"],
        ["x-ca-nonce", "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44"],
        ["x-ca-key", "203753385"],
        ["x-ca-signature-method", "HmacSHA256"],
        [
            "x-ca-signature-headers",
            "x-ca-timestamp,x-ca-key,x-ca-nonce,x-ca-signature-method",
        ],
    ]
    body = b"username=xiaoming&password=123456789"
    assert cs.string_to_sign(
        "POST", "/http2test/test", "param1=test", headers, body
    ) == (
        "POST\n"
        "application/json; charset=utf-8\n"
        "\n"
        "application/x-www-form-urlencoded; charset=utf-8\n"
        "Wed, 09 May 2018 13:30:29 GMT+00:00\n"
        "x-ca-key:203753385\n"
        "x-ca-nonce:c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44\n"
        "x-ca-signature-method:HmacSHA256\n"
        "x-ca-timestamp:1525872629832\n"
        "/http2test/test?param1=test&password=123456789&username=xiaoming"
    )


def test_gateway_error_example_string_to_sign():
    # X-Ca-Error-Message example of the docs, newlines shown as '#'.
    headers = [
        ["Accept", "application/json"],
        ["Content-Type", "application/json"],
        ["X-Ca-Key", "200000"],
        ["X-Ca-Timestamp", "1589458000000"],
        ["X-Ca-Signature-Headers", "X-Ca-Timestamp,X-Ca-Key"],
    ]
    sts = cs.string_to_sign("GET", "/app/v1/config/keys", "keys=TEST", headers, b"")
    assert sts.replace("\n", "#") == (
        "GET#application/json##application/json##X-Ca-Key:200000#"
        "X-Ca-Timestamp:1589458000000#/app/v1/config/keys?keys=TEST"
    )


def test_rfc2202_hmac_sha1_and_rfc4231_hmac_sha256():
    # Known-answer tests of the HMACs themselves (RFC 2202 case 2, RFC 4231 case 2).
    data = "what do ya want for nothing?"
    assert cs.sign("Jefe", "HmacSHA1", data) == "7/zfauXrL6LSdBbV8YTfnCWafHk="
    assert (
        cs.sign("Jefe", "HmacSHA256", data)
        == "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
    )
