"""Encrypted .rknn files (backends/encrypt.py) and `rkc encrypt` / `rkc keygen` /
`rkc inspect --key`: format, round trips, tamper detection, key files, CLI errors."""

from __future__ import annotations

import json
import os
import stat
import struct
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rkc.backends.encrypt import (
    HEADER,
    INSTALL_HINT,
    MAGIC,
    Passphrase,
    ScryptParams,
    decrypt_rknn,
    encrypt_rknn,
    is_encrypted,
    key_from_bytes,
    new_raw_key,
    read_key,
)
from rkc.backends.rknn_file import read_rknn
from rkc.cli import main as rkc_main
from rkc.errors import RkcError

RKNN = Path(__file__).parent / "data" / "vendor" / "rknn"
VENDOR_FILES = sorted(RKNN.glob("*.rknn"))
SMALL = RKNN / "conv_relu_rk3588_fp16.rknn"
KEY = bytes(range(32))
FAST = ScryptParams(log2_n=14)  # tests only: 16 MiB, ~50 ms per derivation


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        rkc_main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(call) -> str:
    with pytest.raises(RkcError) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message
    return message


# -- format --------------------------------------------------------------------------------

def test_header_fields_are_where_the_docstring_says():
    plain = SMALL.read_bytes()
    data = encrypt_rknn(plain, KEY)
    assert HEADER.size == 64 and len(data) == 64 + len(plain) + 16
    assert data[:8] == b"RKCCRYPT" == MAGIC and is_encrypted(data)
    assert not is_encrypted(plain) and not is_encrypted(b"CYPTRKNN" + plain[8:])
    assert struct.unpack_from("<HBBBBBB", data, 8) == (1, 1, 0, 0, 0, 0, 0)
    assert data[16:32] == bytes(16)                      # no salt for a raw key
    assert struct.unpack_from("<I", data, 44) == (0,)
    assert struct.unpack_from("<Q", data, 48) == (len(plain),)
    assert data[56:64] == bytes(8)
    assert plain[64:128] not in data                     # the body is not in clear
    # an independent AES-256-GCM decryption with the header as associated data
    nonce = data[32:44]
    assert AESGCM(KEY).decrypt(nonce, data[64:], data[:64]) == plain
    # a fresh nonce every time
    again = encrypt_rknn(plain, KEY)
    assert again[32:44] != nonce and again[64:] != data[64:]


def test_passphrase_header_and_key_derivation():
    plain = SMALL.read_bytes()
    key = Passphrase(b"correct horse battery staple")
    data = encrypt_rknn(plain, key)                      # the default cost
    assert struct.unpack_from("<BBBB", data, 11) == (1, 17, 8, 1)
    salt, nonce = data[16:32], data[32:44]
    assert salt != bytes(16)
    aes_key = Scrypt(salt=salt, length=32, n=2**17, r=8, p=1).derive(bytes(key))
    assert AESGCM(aes_key).decrypt(nonce, data[64:], data[:64]) == plain
    assert decrypt_rknn(data, key) == plain
    other = encrypt_rknn(plain, key, FAST)
    assert other[16:32] != salt and decrypt_rknn(other, key) == plain


@pytest.mark.parametrize("path", VENDOR_FILES, ids=lambda p: p.stem)
def test_round_trip_vendor_files(path):
    plain = path.read_bytes()
    data = encrypt_rknn(plain, KEY)
    assert decrypt_rknn(data, KEY) == plain
    read_rknn(decrypt_rknn(data, KEY))


@given(st.binary(max_size=300), st.binary(min_size=32, max_size=32))
def test_round_trip_any_bytes(plain, key):
    assert decrypt_rknn(encrypt_rknn(plain, key), key) == plain


def test_wrong_key_is_rejected():
    data = encrypt_rknn(SMALL.read_bytes(), KEY)
    message = one_line_error(lambda: decrypt_rknn(data, bytes(32)))
    assert message == "encrypted model: wrong key or corrupted file (authentication failed)"
    secret = encrypt_rknn(SMALL.read_bytes(), Passphrase(b"first passphrase"), FAST)
    assert "wrong key or corrupted file" in one_line_error(
        lambda: decrypt_rknn(secret, Passphrase(b"second passphrase")))


def test_key_kind_must_match_the_file():
    raw = encrypt_rknn(b"model", KEY)
    secret = encrypt_rknn(b"model", Passphrase(b"a passphrase"), FAST)
    assert one_line_error(lambda: decrypt_rknn(secret, KEY)) == \
        "encrypted model needs a passphrase, the key given is a raw key"
    assert one_line_error(lambda: decrypt_rknn(raw, Passphrase(b"a passphrase"))) == \
        "encrypted model needs a raw 32-byte key, the key given is a passphrase"
    assert "encryption key of 31 bytes, expected 32" in one_line_error(
        lambda: encrypt_rknn(b"model", KEY[:31]))


# -- tampering -----------------------------------------------------------------------------

def flipped(data: bytes, position: int, mask: int) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1:]


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_flipped_header_byte_is_rejected(mask):
    data = encrypt_rknn(SMALL.read_bytes(), KEY)
    for position in range(HEADER.size):
        one_line_error(lambda p=position: decrypt_rknn(flipped(data, p, mask), KEY))


def test_every_flipped_header_byte_of_a_passphrase_file_is_rejected():
    key = Passphrase(b"a passphrase")
    data = encrypt_rknn(b"a small model", key, FAST)
    start = time.perf_counter()
    for position in range(HEADER.size):
        one_line_error(lambda p=position: decrypt_rknn(flipped(data, p, 0x01), key))
    assert time.perf_counter() - start < 20


FILE = encrypt_rknn(SMALL.read_bytes(), KEY)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(FILE) - 1), st.integers(1, 255))
def test_any_flipped_byte_is_rejected(position, mask):
    message = one_line_error(lambda: decrypt_rknn(flipped(FILE, position, mask), KEY))
    if position >= HEADER.size:                          # ciphertext or tag
        assert "wrong key or corrupted file" in message


@given(st.integers(0, len(FILE) - 1))
def test_truncated_or_extended_files_are_rejected(length):
    one_line_error(lambda: decrypt_rknn(FILE[:length], KEY))
    one_line_error(lambda: decrypt_rknn(FILE + FILE[:length + 1], KEY))


def test_hostile_scrypt_parameters_are_refused_before_deriving():
    data = encrypt_rknn(b"model", Passphrase(b"a passphrase"), FAST)
    for offset, value, problem in [(12, 30, "scrypt N=2**30, r=8 out of range"),
                                   (12, 255, "scrypt N=2**255, r=8 out of range"),
                                   (13, 255, "scrypt N=2**14, r=255 out of range"),
                                   (14, 200, "scrypt r=8 p=200 out of range"),
                                   (14, 0, "scrypt r=8 p=0 out of range")]:
        hostile = data[:offset] + bytes([value]) + data[offset + 1:]
        start = time.perf_counter()
        message = one_line_error(lambda h=hostile: decrypt_rknn(h, Passphrase(b"a passphrase")))
        assert problem in message and time.perf_counter() - start < 0.5
    assert "out of range" in one_line_error(
        lambda: encrypt_rknn(b"model", Passphrase(b"a passphrase"), ScryptParams(log2_n=24)))


@pytest.mark.parametrize("offset, value, message", [
    (8, 2, "byte 8: format version 2 is not supported (this rkc reads 1)"),
    (10, 2, "byte 10: unknown cipher 2"),
    (11, 7, "byte 11: unknown key derivation 7"),
    (11, 1, "byte 12: scrypt r=0 p=0 out of range"),
    (16, 1, "byte 12: raw-key file with scrypt parameters or salt set"),
    (15, 1, "reserved bytes are not zero"),
    (60, 1, "reserved bytes are not zero"),
    (48, 9, "byte 48: plain length"),
])
def test_header_problems_are_named(offset, value, message):
    data = bytearray(encrypt_rknn(b"model", KEY))
    data[offset] = value
    assert message in one_line_error(lambda: decrypt_rknn(bytes(data), KEY))


# -- key files -----------------------------------------------------------------------------

def test_key_files(tmp_path):
    def key_file(content: bytes) -> Path:
        path = tmp_path / f"key{len(list(tmp_path.iterdir()))}"
        path.write_bytes(content)
        return path

    raw = new_raw_key()
    assert read_key(key_file(raw)) == raw and type(read_key(key_file(raw))) is bytes
    for content in (b"a passphrase\n", b"a passphrase\r\n", b"a passphrase",
                    "\ufeffa passphrase\r\n".encode()):
        key = read_key(key_file(content))
        assert isinstance(key, Passphrase) and key == b"a passphrase"
    # the same passphrase typed composed or decomposed is the same key
    assert read_key(key_file("caf\u00e9 au lait".encode())) == \
        read_key(key_file("cafe\u0301 au lait".encode()))
    # 32 printable bytes read as a passphrase (the documented rule), not as a raw key
    assert isinstance(read_key(key_file(b"x" * 32)), Passphrase)
    for content, message in [(b"", "0 bytes, neither a 32-byte raw key nor a one-line "
                                    "passphrase"),
                             (b"short\n", "passphrase of 5 characters, at least 8 needed"),
                             (b"two\nlines here\n", "neither a 32-byte raw key"),
                             (raw + b"\0", "33 bytes, neither"),
                             (b"y" * 5000, "larger than 4096 bytes")]:
        path = key_file(content)
        assert one_line_error(lambda p=path: read_key(p)) == f"key file {path}: {message}" \
            or message in one_line_error(lambda p=path: read_key(p))
    assert "No such file" in one_line_error(lambda: read_key(tmp_path / "missing"))


@settings(max_examples=300)
@given(st.integers(0, 2**32))
def test_new_raw_keys_never_read_as_passphrases(_):
    assert type(key_from_bytes(new_raw_key())) is bytes


def test_missing_cryptography_gives_the_install_hint(monkeypatch):
    for name in [m for m in sys.modules if m == "cryptography" or
                 m.startswith("cryptography.")] + ["cryptography"]:
        monkeypatch.setitem(sys.modules, name, None)
    assert one_line_error(lambda: encrypt_rknn(b"model", KEY)) == INSTALL_HINT
    assert INSTALL_HINT == ("model encryption needs the 'cryptography' package: "
                            "pip install 'rkc[crypto]'")


# -- command line --------------------------------------------------------------------------

@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.key"
    path.write_bytes(KEY)
    return path


def test_keygen(tmp_path, capsys):
    path = tmp_path / "k"
    code, _, err = run_cli(["keygen", "-o", str(path)], capsys)
    assert code == 0 and "32 random bytes" in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_bytes()
    assert len(key) == 32 and type(read_key(path)) is bytes
    code, _, err = run_cli(["keygen", "-o", str(path)], capsys)
    assert code == 2 and "exists" in err and path.read_bytes() == key
    code, _, _ = run_cli(["keygen", "-o", str(path), "--force"], capsys)
    assert code == 0 and path.read_bytes() != key and len(path.read_bytes()) == 32
    assert sorted(os.listdir(tmp_path)) == ["k"]


def test_encrypt_inspect_decrypt(tmp_path, key_file, capsys):
    enc, dec = tmp_path / "m.enc.rknn", tmp_path / "m.dec.rknn"
    code, _, err = run_cli(["encrypt", str(SMALL), "--key", str(key_file), "-o", str(enc)],
                           capsys)
    assert code == 0 and "AES-256-GCM, 32-byte key" in err
    assert is_encrypted(enc.read_bytes())
    assert decrypt_rknn(enc.read_bytes(), KEY) == SMALL.read_bytes()

    code, out, err = run_cli(["inspect", str(enc)], capsys)
    assert (code, out) == (2, "")
    assert err == f"rkc: error: {enc}: encrypted model (rkc format); pass --key KEYFILE\n"

    _, plain_json, _ = run_cli(["inspect", "--json", str(SMALL)], capsys)
    code, out, _ = run_cli(["inspect", "--json", "--key", str(key_file), str(enc)], capsys)
    assert code == 0 and json.loads(out) == json.loads(plain_json)
    code, out, _ = run_cli(["inspect", "--key", str(key_file), str(enc)], capsys)
    assert code == 0 and out.startswith(f"{enc.name}: {SMALL.stat().st_size} bytes")

    code, _, err = run_cli(["encrypt", "--decrypt", str(enc), "--key", str(key_file),
                            "-o", str(dec)], capsys)
    assert code == 0 and "decrypted" in err and dec.read_bytes() == SMALL.read_bytes()


def test_passphrase_key_file_on_the_command_line(tmp_path, capsys):
    passphrase, enc = tmp_path / "pass.txt", tmp_path / "m.enc.rknn"
    passphrase.write_text("my long passphrase\n")
    code, _, err = run_cli(["encrypt", str(SMALL), "--key", str(passphrase), "-o", str(enc)],
                           capsys)
    assert code == 0 and "passphrase, scrypt" in err
    code, out, _ = run_cli(["inspect", "--key", str(passphrase), str(enc)], capsys)
    assert code == 0 and "target: rk3588" in out


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, key_file, capsys):
    enc, out = tmp_path / "m.enc.rknn", tmp_path / "out.rknn"
    run_cli(["encrypt", str(SMALL), "--key", str(key_file), "-o", str(enc)], capsys)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(bytes(32))
    tampered = tmp_path / "tampered.rknn"
    tampered.write_bytes(flipped(enc.read_bytes(), 1000, 0x10))
    toolkit = tmp_path / "toolkit.rknn"
    toolkit.write_bytes(b"CYPTRKNN" + SMALL.read_bytes()[8:])
    short_key = tmp_path / "short.key"
    short_key.write_text("abc\n")
    before = sorted(os.listdir(tmp_path))
    cases = [
        (["inspect", "--key", str(wrong), str(enc)],
         f"{enc}: encrypted model: wrong key or corrupted file (authentication failed)"),
        (["inspect", "--key", str(key_file), str(tampered)],
         f"{tampered}: encrypted model: wrong key or corrupted file"),
        (["encrypt", "--decrypt", str(enc), "--key", str(wrong), "-o", str(out)],
         "wrong key or corrupted file"),
        (["encrypt", "--decrypt", str(tampered), "--key", str(key_file), "-o", str(out)],
         "wrong key or corrupted file"),
        (["encrypt", "--decrypt", str(SMALL), "--key", str(key_file), "-o", str(out)],
         f"{SMALL}: not an encrypted model, nothing to decrypt"),
        (["encrypt", str(enc), "--key", str(key_file), "-o", str(out)],
         f"{enc}: already encrypted"),
        (["encrypt", str(key_file), "--key", str(key_file), "-o", str(out)],
         f"{key_file}: not a readable .rknn file: truncated"),
        (["encrypt", str(SMALL), "--key", str(short_key), "-o", str(out)],
         "passphrase of 3 characters, at least 8 needed"),
        (["encrypt", str(SMALL), "--key", str(tmp_path / "nokey"), "-o", str(out)],
         "key file"),
        (["encrypt", str(tmp_path / "none.rknn"), "--key", str(key_file), "-o", str(out)],
         "cannot read"),
        (["encrypt", str(SMALL), "--key", str(key_file), "-o", str(tmp_path / "no/dir.rknn")],
         "cannot write"),
        (["inspect", str(toolkit)], "encrypted by rknn-toolkit2"),
        (["encrypt", "--decrypt", str(toolkit), "--key", str(key_file), "-o", str(out)],
         "rkc cannot decrypt it"),
    ]
    for args, message in cases:
        code, stdout, err = run_cli(args, capsys)
        assert code == 2 and stdout == "", args
        assert err.startswith("rkc: error: ") and err.count("\n") == 1, err
        assert message in err, (args, err)
        assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == before


def test_cli_without_cryptography(tmp_path, key_file, monkeypatch, capsys):
    for name in [m for m in sys.modules if m.startswith("cryptography")] + ["cryptography"]:
        monkeypatch.setitem(sys.modules, name, None)
    out = tmp_path / "out.rknn"
    code, _, err = run_cli(["encrypt", str(SMALL), "--key", str(key_file), "-o", str(out)],
                           capsys)
    assert (code, err) == (2, f"rkc: error: {INSTALL_HINT}\n") and not out.exists()
    # plain files are still inspected without the package
    code, out_text, _ = run_cli(["inspect", str(SMALL)], capsys)
    assert code == 0 and "target: rk3588" in out_text


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_inputs_are_refused(key_file, tmp_path, capsys):
    for args in (["inspect", "/dev/zero"],
                 ["encrypt", "/dev/zero", "--key", str(key_file), "-o", str(tmp_path / "o")]):
        code, _, err = run_cli(args, capsys)
        assert (code, err) == (2, "rkc: error: cannot read /dev/zero: not a regular file\n")
    assert "larger than 4096 bytes" in one_line_error(lambda: read_key("/dev/zero"))
