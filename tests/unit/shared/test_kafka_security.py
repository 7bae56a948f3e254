"""The Kafka security settings: valid combinations only, one translation for every client."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from docflow_shared.kafka_security import KafkaSecurity, client_kwargs
from docflow_shared.settings import ServiceSettings
from support.certificates import TestAuthority

SCRAM = {
    "DOCFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "DOCFLOW_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "DOCFLOW_KAFKA_SASL_USERNAME": "docflow-extractor",
    "DOCFLOW_KAFKA_SASL_PASSWORD": "s3cret-password",
}


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> TestAuthority:
    return TestAuthority(tmp_path_factory.mktemp("certs"))


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ServiceSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ServiceSettings()


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    security = ServiceSettings().kafka_security
    assert security.protocol == "PLAINTEXT"
    assert security.faststream_security() is None
    assert client_kwargs(security) == {} == client_kwargs(None)


def test_scram_over_tls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    security = settings_from(monkeypatch, SCRAM).kafka_security
    fast = security.faststream_security()
    assert isinstance(fast, SASLScram512)
    assert (fast.username, fast.password, fast.use_ssl) == (
        "docflow-extractor",
        "s3cret-password",
        True,
    )
    kwargs = security.aiokafka_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "docflow-extractor"
    assert kwargs["sasl_plain_password"] == "s3cret-password"
    context = kwargs["ssl_context"]
    # The system's CAs, and the brokers' names checked.
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


@pytest.mark.parametrize(
    ("mechanism", "cls"),
    [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)],
)
def test_each_mechanism_and_both_sasl_protocols(
    mechanism: str, cls: type[BaseSecurity], monkeypatch: pytest.MonkeyPatch
) -> None:
    for protocol, tls in (("SASL_SSL", True), ("SASL_PLAINTEXT", False)):
        env = {**SCRAM, "DOCFLOW_KAFKA_SECURITY_PROTOCOL": protocol}
        env["DOCFLOW_KAFKA_SASL_MECHANISM"] = mechanism
        security = settings_from(monkeypatch, env).kafka_security
        fast = security.faststream_security()
        assert type(fast) is cls
        kwargs = security.aiokafka_kwargs()
        assert kwargs == parse_security(fast) | {"ssl_context": kwargs["ssl_context"]}
        assert (kwargs["security_protocol"], kwargs["sasl_mechanism"]) == (protocol, mechanism)
        assert (kwargs["ssl_context"] is not None) is tls


def test_mutual_tls_loads_the_client_certificate(
    authority: TestAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = authority.client("docflow-status")
    security = settings_from(
        monkeypatch,
        {
            "DOCFLOW_KAFKA_SECURITY_PROTOCOL": "SSL",
            "DOCFLOW_KAFKA_SSL_CAFILE": str(authority.cafile),
            "DOCFLOW_KAFKA_SSL_CERTFILE": str(cert.certfile),
            "DOCFLOW_KAFKA_SSL_KEYFILE": str(cert.keyfile),
            "DOCFLOW_KAFKA_SSL_CHECK_HOSTNAME": "false",
        },
    ).kafka_security
    fast = security.faststream_security()
    assert type(fast) is BaseSecurity
    assert fast.use_ssl
    kwargs = security.aiokafka_kwargs()
    assert kwargs["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in kwargs
    assert kwargs["ssl_context"].check_hostname is False
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    # The CA file is what the context trusts.
    assert [c["subject"] for c in kwargs["ssl_context"].get_ca_certs()] == [
        ((("commonName", "docflow test CA"),),)
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DOCFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "SASL_SSL needs DOCFLOW_KAFKA_SASL_MECHANISM, DOCFLOW_KAFKA_SASL_PASSWORD, "
            "DOCFLOW_KAFKA_SASL_USERNAME",
        ),
        ({**SCRAM, "DOCFLOW_KAFKA_SASL_PASSWORD": ""}, "needs DOCFLOW_KAFKA_SASL_PASSWORD"),
        (
            {"DOCFLOW_KAFKA_SASL_USERNAME": "u", "DOCFLOW_KAFKA_SASL_PASSWORD": "p"},
            "DOCFLOW_KAFKA_SASL_PASSWORD, DOCFLOW_KAFKA_SASL_USERNAME given but "
            "DOCFLOW_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL",
        ),
        (
            {"DOCFLOW_KAFKA_SECURITY_PROTOCOL": "SSL", "DOCFLOW_KAFKA_SASL_MECHANISM": "PLAIN"},
            "DOCFLOW_KAFKA_SASL_MECHANISM given but DOCFLOW_KAFKA_SECURITY_PROTOCOL=SSL",
        ),
        (
            {**SCRAM, "DOCFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
            | {"DOCFLOW_KAFKA_SSL_CAFILE": "/etc/hostname"},
            "DOCFLOW_KAFKA_SSL_CAFILE given but DOCFLOW_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT "
            "does not use TLS",
        ),
        (
            {"DOCFLOW_KAFKA_SSL_CHECK_HOSTNAME": "false"},
            "DOCFLOW_KAFKA_SSL_CHECK_HOSTNAME given but DOCFLOW_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {"DOCFLOW_KAFKA_SECURITY_PROTOCOL": "SSL", "DOCFLOW_KAFKA_SSL_CAFILE": "/nonexistent"},
            "DOCFLOW_KAFKA_SSL_CAFILE=/nonexistent: no such file",
        ),
        ({"DOCFLOW_KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka_security_protocol\n  Input should be"),
        ({**SCRAM, "DOCFLOW_KAFKA_SASL_MECHANISM": "GSSAPI"}, "kafka_sasl_mechanism\n  Input"),
    ],
)
def test_a_combination_that_cannot_work_fails_at_start(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError) as raised:
        settings_from(monkeypatch, env)
    assert message in str(raised.value)


def test_a_key_without_its_certificate_or_a_file_that_is_no_certificate(
    authority: TestAuthority, tmp_path: Path
) -> None:
    cert = authority.client("docflow-gateway")
    with pytest.raises(ValidationError, match="DOCFLOW_KAFKA_SSL_KEYFILE given without"):
        KafkaSecurity(protocol="SSL", ssl_keyfile=cert.keyfile)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ValidationError, match="cannot load the Kafka TLS files"):
        KafkaSecurity(protocol="SSL", ssl_cafile=junk)
    with pytest.raises(ValidationError, match="cannot load the Kafka TLS files"):
        KafkaSecurity(protocol="SSL", ssl_certfile=cert.certfile, ssl_keyfile=authority.cafile)


def test_the_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, SCRAM)
    assert "s3cret-password" not in repr(settings)
    assert "s3cret-password" not in repr(settings.kafka_security)
    with pytest.raises(ValidationError) as raised:
        settings_from(monkeypatch, {"DOCFLOW_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"})
    assert "s3cret-password" not in str(raised.value)


def test_empty_values_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = dict.fromkeys(
        (
            "DOCFLOW_KAFKA_SASL_MECHANISM",
            "DOCFLOW_KAFKA_SASL_USERNAME",
            "DOCFLOW_KAFKA_SASL_PASSWORD",
            "DOCFLOW_KAFKA_SSL_CAFILE",
            "DOCFLOW_KAFKA_SSL_CERTFILE",
            "DOCFLOW_KAFKA_SSL_KEYFILE",
        ),
        "",
    )
    assert settings_from(monkeypatch, empty).kafka_security == KafkaSecurity()
