"""A SAT-like certificate authority for demos and tests (``carpeta dev-ca``).

It issues e.firma and CSD certificates shaped like SAT's, ``.key`` files in SAT's exact
format, a CRL and OCSP answers, so the whole sign-in path -- parsing, issuer, validity,
revocation, signature -- runs against real cryptography without SAT's production CAs. Its
key is stored unencrypted (``ca-key.pem``, mode 0600): it must never be a production anchor.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from eidentity.devca import certs
from eidentity.devca.ocsp_responder import ResponderKeys, SerialStatus, answer
from eidentity.devca.satkey import encrypt_private_key
from eidentity.devca.state import CaState, StateFile, revocation_entry, save_state
from eidentity.efirma.certificate import certificate_number
from eidentity.efirma.tolerant import name_indexes, split_certificate

DEFAULT_CA_NAME = "AC DE PRUEBAS CARPETA"
_CURP_SHAPE = re.compile(r"^[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{5}[A-Z0-9]\d$")
_RFC_FISICA = re.compile(r"^[A-ZÑ&]{4}\d{6}[A-Z0-9]{3}$")
_RFC_MORAL = re.compile(r"^[A-ZÑ&]{3}\d{6}[A-Z0-9]{3}$")
_HOLDER_YEARS = timedelta(days=4 * 365)  # SAT's e.firma lasts four years
_signer_lock = threading.Lock()  # responder threads may race to create the delegate


@dataclass(frozen=True)
class IssuedCredential:
    cer_path: Path
    key_path: Path
    certificate_number: str


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


def init_ca(
    directory: str | Path, *, common_name: str = DEFAULT_CA_NAME, key_size: int = 4096
) -> DevCa:
    """Create a new CA in ``directory`` (refuses to overwrite an existing one)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    if (root / "ca.cer").exists():
        raise FileExistsError(f"{root} already holds a dev CA")
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    now = datetime.now(UTC)
    cert = certs.ca_certificate(key, common_name, now)
    (root / "ca.cer").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    (root / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(root / "ca-key.pem", _private_pem(key))
    save_state(root / "state.json", CaState())
    return DevCa.load(root)


class DevCa:
    """A dev CA living in a directory: ``ca.cer``, ``ca.pem``, ``ca-key.pem``, ``state.json``."""

    def __init__(
        self, directory: Path, certificate: x509.Certificate, private_key: rsa.RSAPrivateKey
    ) -> None:
        self.directory = directory
        self.certificate = certificate
        self.private_key = private_key
        self.state = StateFile(directory / "state.json")
        _, tbs = split_certificate(certificate.public_bytes(serialization.Encoding.DER))
        self.subject_der = tbs[name_indexes(tbs)[1]].raw

    @classmethod
    def load(cls, directory: str | Path) -> DevCa:
        root = Path(directory)
        cert = x509.load_der_x509_certificate((root / "ca.cer").read_bytes())
        key = serialization.load_pem_private_key((root / "ca-key.pem").read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the dev CA key must be RSA")
        return cls(root, cert, key)

    @property
    def cer_path(self) -> Path:
        return self.directory / "ca.cer"

    @property
    def pem_path(self) -> Path:
        return self.directory / "ca.pem"

    def issue(
        self,
        curp: str,
        rfc: str,
        name: str,
        password: str,
        *,
        expired: bool = False,
        not_yet_valid: bool = False,
        csd: bool = False,
        company_rfc: str | None = None,
        revoked: bool = False,
        email: str = "pruebas@carpeta.invalid",
    ) -> IssuedCredential:
        """Issue a certificate and write ``<RFC>.cer`` (DER) and ``<RFC>.key`` (SAT format).

        For a persona moral, ``rfc``/``curp``/``name`` are the representative's RFC and CURP
        and the company's name; the files are named after ``company_rfc``.
        """
        curp, rfc = curp.strip().upper(), rfc.strip().upper()
        company = company_rfc.strip().upper() if company_rfc else None
        if not _CURP_SHAPE.match(curp):
            raise ValueError(f"CURP con forma inválida: {curp!r}")
        if not _RFC_FISICA.match(rfc):
            raise ValueError(f"RFC de persona física inválido: {rfc!r}")
        if company is not None and not _RFC_MORAL.match(company):
            raise ValueError(f"RFC de persona moral inválido: {company!r}")
        if expired and not_yet_valid:
            raise ValueError("a certificate cannot be both expired and not yet valid")
        if not password:
            raise ValueError("the .key needs a password")
        number = self.state.update(lambda state: state.allocate())
        now = datetime.now(UTC)
        not_before, not_after = now - timedelta(minutes=5), now + _HOLDER_YEARS
        if expired:
            not_before, not_after = now - _HOLDER_YEARS - timedelta(days=1), now - timedelta(1)
        if not_yet_valid:
            not_before, not_after = now + timedelta(days=30), now + _HOLDER_YEARS
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = certs.holder_subject(
            name=name.strip(),
            rfc_field=f"{company} / {rfc}" if company else rfc,
            curp_field=f" / {curp}" if company else curp,
            email=email,
            csd=csd,
        )
        builder = certs.holder_builder(
            subject=subject,
            ca_cert=self.certificate,
            public_key=key.public_key(),
            serial=int.from_bytes(number.encode("ascii"), "big"),
            not_before=not_before,
            not_after=not_after,
            csd=csd,
        )
        cer = certs.sign_sat_style(builder, self.private_key)
        cer_path, key_path = self._free_paths(company or rfc, number)
        cer_path.write_bytes(cer)
        _write_private(key_path, encrypt_private_key(key, password))

        def record(state: CaState) -> None:
            state.issued[number] = {
                "rfc": rfc,
                "curp": curp,
                "company_rfc": company,
                "name": name,
                "kind": "csd" if csd else "efirma",
                "not_before": not_before.isoformat(),
                "not_after": not_after.isoformat(),
                "cer": cer_path.name,
            }

        self.state.update(record)
        if revoked:
            self.revoke(number)
        return IssuedCredential(cer_path, key_path, number)

    def _free_paths(self, stem: str, number: str) -> tuple[Path, Path]:
        """``<RFC>.cer`` the first time; ``<RFC>_<número>.cer`` for later issues."""
        cer = self.directory / f"{stem}.cer"
        if cer.exists() or cer.with_suffix(".key").exists():
            cer = self.directory / f"{stem}_{number}.cer"
        return cer, cer.with_suffix(".key")

    def revoke(
        self,
        serial: str | int,
        *,
        reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
        when: datetime | None = None,
    ) -> None:
        """Revoke by número de certificado (``"3000..."``) or by integer serial."""
        number = certificate_number(serial) if isinstance(serial, int) else serial

        def mark(state: CaState) -> None:
            if number not in state.issued:
                raise KeyError(f"{number} was not issued by this CA")
            state.revoked[number] = revocation_entry(when or datetime.now(UTC), reason.value)

        self.state.update(mark)

    def status_of(self, serial: int) -> SerialStatus:
        state = self.state.read()
        number = certificate_number(serial)
        if number in state.revoked:
            entry = state.revoked[number]
            return SerialStatus(
                "revoked",
                datetime.fromisoformat(entry["revoked_at"]),
                x509.ReasonFlags(entry["reason"]),
            )
        return SerialStatus("good" if number in state.issued else "unknown")

    def crl(self, *, validity: timedelta = timedelta(days=1)) -> bytes:
        """A fresh DER CRL of every revocation, also written to ``crl.der``."""
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + validity)
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        )
        for number, entry in sorted(self.state.read().revoked.items()):
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(int.from_bytes(number.encode("ascii"), "big"))
                .revocation_date(datetime.fromisoformat(entry["revoked_at"]))
            )
            if entry["reason"] != x509.ReasonFlags.unspecified.value:
                revoked = revoked.add_extension(
                    x509.CRLReason(x509.ReasonFlags(entry["reason"])), critical=False
                )
            builder = builder.add_revoked_certificate(revoked.build())
        data = builder.sign(self.private_key, hashes.SHA256()).public_bytes(
            serialization.Encoding.DER
        )
        (self.directory / "crl.der").write_bytes(data)
        return data

    def ocsp_response(self, request_der: bytes, *, delegated: bool = False) -> bytes:
        """Answer an OCSP request, signed by the CA or by its delegated responder."""
        if delegated:
            signer_cert, signer_key = self.ocsp_signer()
        else:
            signer_cert, signer_key = self.certificate, self.private_key
        keys = ResponderKeys(self.certificate, self.subject_der, signer_cert, signer_key)
        return answer(request_der, keys, self.status_of, datetime.now(UTC))

    def ocsp_signer(self) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """The delegated OCSP responder (EKU OCSPSigning, ocsp-nocheck); made on first use."""
        cer, pem = self.directory / "ocsp.cer", self.directory / "ocsp-key.pem"
        with _signer_lock:
            if not cer.exists():
                self._make_ocsp_signer(cer, pem)
        loaded = serialization.load_pem_private_key(pem.read_bytes(), None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError("the OCSP responder key must be RSA")
        return x509.load_der_x509_certificate(cer.read_bytes()), loaded

    def _make_ocsp_signer(self, cer: Path, pem: Path) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = certs.ocsp_signer_certificate(
            self.certificate, self.private_key, key.public_key(), datetime.now(UTC)
        )
        _write_private(pem, _private_pem(key))
        cer.write_bytes(cert.public_bytes(serialization.Encoding.DER))
