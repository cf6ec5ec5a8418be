"""C2PA Content Credentials: a signed manifest in every MP4 talkface writes, and the check of one.

The manifest (c2pa-python) says the video was created by talkface as trainedAlgorithmicMedia and lists its
inputs, the portrait and the audio, as ingredients described by their SHA-256 (instance_id
"sha256:<hex>"), never by their media. The claim is signed with the certificate chain and key named by
TALKFACE_C2PA_CERT and TALKFACE_C2PA_KEY (PEM files), or else with a self-signed ES256 certificate made on
first use under the user's config dir ($XDG_CONFIG_HOME/talkface/c2pa, ~/.config/talkface/c2pa).

The manifest complements the watermark: it proves the file is unchanged since it was signed, but any edit
or re-encode drops or breaks it, whereas the watermark lives in the pixels and survives H.264.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import mimetypes
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talkface import __version__
from talkface.errors import TalkfaceError

log = logging.getLogger(__name__)

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CERT_ENV = "TALKFACE_C2PA_CERT"  # PEM certificate chain, signing certificate first
KEY_ENV = "TALKFACE_C2PA_KEY"  # PEM private key (unencrypted) of the signing certificate
LOCAL_VALID_DAYS = 3650  # the self-signed certificate's lifetime
# Not a sign of tampering: the signer is merely unknown to the verifier (always so for a self-signed one).
_UNTRUSTED = "signingCredential.untrusted"


@dataclass(frozen=True)
class Ingredient:
    """An input of the video, by hash: title (a file name, or what the input was), format (MIME type),
    sha256 (hex digest of its bytes)."""

    title: str
    format: str
    sha256: str


@dataclass(frozen=True)
class Credentials:
    """What signs manifests: chain (PEM, signing certificate first), key (PEM), alg (c2pa name: es256...),
    local (the self-signed certificate of this installation)."""

    chain: bytes
    key: bytes
    alg: str
    local: bool


@dataclass(frozen=True)
class ManifestCheck:
    """What a video's C2PA manifest says. state: "valid" (signature and hashes match the file), "tampered"
    (the file changed after signing, or the manifest is damaged), "absent" (no manifest, e.g. re-encoded).
    trusted: signed with this installation's credentials (their root is a trust anchor here)."""

    state: str
    generator: str | None = None
    digital_source_type: str | None = None
    ingredients: tuple[Ingredient, ...] = ()
    signer: str | None = None
    trusted: bool = False
    problems: tuple[str, ...] = field(default=())


def ingredient(source: str | Path | np.ndarray, title: str | None = None) -> Ingredient:
    """An Ingredient for a file (hashed in 1 MiB blocks) or an image in memory (its pixel bytes)."""
    if isinstance(source, np.ndarray):
        h = hashlib.sha256(np.ascontiguousarray(source).tobytes())
        shape = "x".join(map(str, source.shape))
        return Ingredient(
            title or f"image in memory ({shape} {source.dtype})", "application/octet-stream", h.hexdigest()
        )
    path = Path(source)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    fmt = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Ingredient(title or path.name, fmt, h.hexdigest())


def manifest_definition(title: str, ingredients: Sequence[Ingredient]) -> dict:
    """The manifest to sign: talkface created it as trainedAlgorithmicMedia from `ingredients`."""
    agent = {"name": "talkface", "version": __version__}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "format": "video/mp4",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": agent,
                            "description": "synthetic talking-face video generated from one image and audio",
                        }
                    ]
                },
            }
        ],
        "ingredients": [
            {
                "title": i.title,
                "format": i.format,
                "relationship": "inputTo",
                "instance_id": f"sha256:{i.sha256}",
                "description": "input identified by the SHA-256 of its bytes; its media is not embedded",
            }
            for i in ingredients
        ],
    }


def sign_mp4(src: Path, dst: Path, ingredients: Sequence[Ingredient], title: str | None = None) -> None:
    """Write `src` with a signed manifest embedded to `dst` (a new file; `src` is left as it was).
    Raises TalkfaceError if the credentials are unusable."""
    import c2pa

    creds = credentials()
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(creds.alg, creds.chain, creds.key, None))
        with c2pa.Builder(manifest_definition(title or dst.name, ingredients)) as builder:
            with open(src, "rb") as s, open(dst, "w+b") as d:
                builder.sign(signer, "video/mp4", s, d)
    except c2pa.C2paError as e:
        source = "the local certificate" if creds.local else f"{CERT_ENV} / {KEY_ENV}"
        raise TalkfaceError(f"could not sign the C2PA manifest with {source}: {e}") from e


def check_manifest(path: str | Path) -> ManifestCheck:
    """Read and validate the C2PA manifest of the video at `path`."""
    import c2pa

    try:
        reader = c2pa.Reader.try_create(str(path), context=_trust_context())
    except c2pa.C2paError.NotSupported:
        return ManifestCheck("absent", problems=("this file format cannot carry a C2PA manifest",))
    except c2pa.C2paError as e:  # the file or its manifest does not parse: damaged, if it had one
        return ManifestCheck("tampered" if _mentions_c2pa(path) else "absent", problems=(str(e),))
    if reader is None:
        return ManifestCheck("absent")
    with reader:
        state = reader.get_validation_state()
        results = (reader.get_validation_results() or {}).get("activeManifest") or {}
        active = reader.get_active_manifest() or {}
    problems = tuple(r["code"] for r in results.get("failure", ()) if r.get("code") != _UNTRUSTED)
    gen = (active.get("claim_generator_info") or [{}])[0]
    sources = [
        a.get("digitalSourceType")
        for assertion in active.get("assertions", ())
        if assertion.get("label", "").startswith("c2pa.actions")
        for a in assertion.get("data", {}).get("actions", ())
        if a.get("action") == "c2pa.created"
    ]
    ingredients = tuple(
        Ingredient(i.get("title", ""), i.get("format", ""), i.get("instance_id", "").removeprefix("sha256:"))
        for i in active.get("ingredients", ())
    )
    sig = active.get("signature_info") or {}
    return ManifestCheck(
        state="tampered" if state == "Invalid" or problems else "valid",
        generator=" ".join(filter(None, (gen.get("name"), gen.get("version")))) or None,
        digital_source_type=sources[0] if sources else None,
        ingredients=ingredients,
        signer=(f"{sig.get('common_name')} (issued by {sig.get('issuer')})" if sig else None),
        trusted=state == "Trusted",
        problems=problems,
    )


def _mentions_c2pa(path: str | Path) -> bool:
    """Whether the bytes of the file hold the JUMBF label of a C2PA manifest store, "c2pa"."""
    tail = b""
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            if b"c2pa" in tail + block:
                return True
            tail = block[-3:]
    return False


def _trust_context():
    """A c2pa Context that trusts the root of this installation's credentials, if they exist yet."""
    import c2pa

    try:
        creds = credentials(create=False)
    except TalkfaceError:
        creds = None
    if creds is None:
        return None
    root = b"-----BEGIN CERTIFICATE-----" + creds.chain.split(b"-----BEGIN CERTIFICATE-----")[-1]
    try:
        return c2pa.Context.from_dict(
            {"trust": {"user_anchors": root.decode()}, "verify": {"verify_trust": True}}
        )
    except (c2pa.C2paError, UnicodeDecodeError) as e:
        log.warning("cannot trust the configured C2PA certificate when verifying: %s", e)
        return None


def config_dir() -> Path:
    """Where the local signing certificate lives: $XDG_CONFIG_HOME/talkface/c2pa (~/.config/...)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "talkface" / "c2pa"


def credentials(create: bool = True) -> Credentials | None:
    """The user's credentials (TALKFACE_C2PA_CERT and TALKFACE_C2PA_KEY), else the local self-signed ones,
    made on first use when `create` (else None if there are none yet)."""
    cert, key = os.environ.get(CERT_ENV), os.environ.get(KEY_ENV)
    if cert or key:
        if not (cert and key):
            raise TalkfaceError(f"set both {CERT_ENV} and {KEY_ENV} (PEM files), or neither")
        try:
            chain, pem = Path(cert).read_bytes(), Path(key).read_bytes()
        except OSError as e:
            raise TalkfaceError(f"cannot read the C2PA signing credentials: {e}") from e
        return Credentials(chain, pem, _alg(pem), local=False)
    d = config_dir()
    if not (d / "key.pem").exists():
        if not create:
            return None
        _make_local(d)
    pem = (d / "key.pem").read_bytes()
    return Credentials((d / "cert.pem").read_bytes(), pem, _alg(pem), local=True)


def _alg(key_pem: bytes) -> str:
    """The c2pa signing algorithm for a PEM private key: es256/384/512 (EC), ps256 (RSA), ed25519."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise TalkfaceError(f"the C2PA signing key is not an unencrypted PEM private key: {e}") from e
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in algs:
            return algs[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise TalkfaceError("the C2PA signing key must be EC P-256/384/521, RSA or Ed25519")


def _make_local(d: Path) -> None:
    """Make a self-signed ES256 certificate and its key in `d`. The directory appears whole (renamed from a
    temporary one), so two processes starting at once never pair one's key with the other's certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "talkface local signer"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "talkface (self-signed, identity not verified)"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    usage = dict.fromkeys(
        (
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=LOCAL_VALID_DAYS))
        # c2pa's certificate profile: a critical digitalSignature key usage, an allowed extended key usage,
        # and key identifiers (it refuses the certificate without the authority key identifier).
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, **usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".c2pa.", dir=d.parent))  # mode 0700
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(tmp / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    try:
        tmp.rename(d)
        log.info("made a self-signed C2PA signing certificate in %s", d)
    except OSError:  # another process made it first (or d exists without a key: leave it to the user)
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
        if not (d / "key.pem").exists():
            raise TalkfaceError(
                f"{d} exists but holds no key.pem: remove it or set {CERT_ENV}/{KEY_ENV}"
            ) from None
