"""The operator's CLI on a real database: agencies, categories, citizens, keys, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jwt.algorithms import OKPAlgorithm

from tests.integration.agencies import TestAgency
from wallet.cli import main


@pytest.fixture
def run(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CARPETA_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CARPETA_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    def refuse(*args: str) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code != 0
        return result.output

    invoke.refuse = refuse  # type: ignore[attr-defined]
    return invoke


def test_agency_lifecycle(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = TestAgency("sat"), TestAgency("sat", kid="k2")
    jwks = tmp_path / "sat.json"
    jwks.write_text(json.dumps(first.jwks()))
    out = run(
        "agency",
        "add",
        "--id",
        "sat",
        "--name",
        "SAT",
        "--jwks",
        str(jwks),
        "--category",
        "acta_nacimiento",
        "--purpose",
        "verificacion_identidad",
        "--legal-basis",
        "acta_nacimiento:verificacion_identidad:Art. 27 CFF",
    )
    assert "Art. 27 CFF" in out and "k1" in out
    listed = json.loads(run("agency", "list", "--json"))
    assert listed[0]["id"] == "sat" and listed[0]["disabled"] is False
    assert sorted(listed[0]["scopes"]) == [
        "consent:request",
        "data:request",
        "procedures:write",
        "records:write",
    ]
    jwks.write_text(json.dumps(second.jwks()))
    run("agency", "set-jwks", "--id", "sat", "--jwks", str(jwks))
    assert json.loads(run("agency", "list", "--json"))[0]["key_ids"] == ["k2"]
    run("agency", "disable", "--id", "sat")
    assert json.loads(run("agency", "list", "--json"))[0]["disabled"] is True
    run("agency", "enable", "--id", "sat")
    # Refusals are clear messages, not tracebacks.
    assert "no_existe" in run.refuse(  # type: ignore[attr-defined]
        "agency",
        "add",
        "--id",
        "imss",
        "--name",
        "IMSS",
        "--jwks",
        str(jwks),
        "--category",
        "no_existe",
    )
    private = {**OKPAlgorithm.to_jwk(first.key, as_dict=True), "kid": "k1"}
    jwks.write_text(json.dumps({"keys": [private]}))
    assert (
        "priv"
        in run.refuse(  # type: ignore[attr-defined]
            "agency", "add", "--id", "imss", "--name", "IMSS", "--jwks", str(jwks)
        ).lower()
    )
    assert "Error" in run.refuse("agency", "disable", "--id", "nadie")  # type: ignore[attr-defined]


def test_categories_citizens_keys_and_settings(run) -> None:  # type: ignore[no-untyped-def]
    run("category", "add", "--code", "licencia_conducir", "--name", "Licencia de conducir")
    run("category", "add", "--code", "vih", "--name", "Resultado de prueba de VIH", "--sensitive")
    listed = run("category", "list")
    assert "licencia_conducir" in listed and "vih" in listed and "[sensible]" in listed
    assert "Inscrita" in run(
        "citizen", "enroll", "--curp", "BAAI810809HJCRCS02", "--phone", "5512345678"
    )
    assert "Actualizada" in run(
        "citizen", "enroll", "--curp", "baai810809hjcrcs02", "--phone", "5587654321"
    )
    out = run.refuse("citizen", "enroll", "--curp", "BAAI810809HJCRCS09", "--phone", "5512345678")  # type: ignore[attr-defined]
    assert "dígito verificador" in out
    assert "Llave nueva" in run("keys", "rotate")
    settings = run("settings")
    assert "CARPETA_DATABASE_URL" in settings and "CARPETA_EFIRMA_OCSP_URL" in settings
