import pytest

from docflow_shared.auth import Authenticator, UnknownKeyError, hash_key, main


def test_with_auth_off_everyone_is_the_default_tenant() -> None:
    auth = Authenticator(enabled=False, default_tenant="default", keys={})
    assert auth.tenant_for(None) == "default"
    assert auth.tenant_for("anything") == "default"


def test_a_key_maps_to_its_tenant_and_nothing_else_does() -> None:
    auth = Authenticator(
        enabled=True,
        default_tenant="default",
        keys={"acme": [hash_key("a1"), hash_key("a2")], "globex": [hash_key("g1")]},
    )
    assert auth.tenant_for("a2") == "acme"
    assert auth.tenant_for("g1") == "globex"
    for bad in (None, "", "a3", hash_key("a1")):
        with pytest.raises(UnknownKeyError):
            auth.tenant_for(bad)


def test_keys_in_clear_are_refused_in_configuration() -> None:
    with pytest.raises(ValueError, match="sha256"):
        Authenticator(enabled=True, default_tenant="d", keys={"acme": ["a1"]})


def test_auth_on_without_keys_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="no API keys"):
        Authenticator(enabled=True, default_tenant="d", keys={})


def test_the_command_prints_a_new_key_and_its_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new"]) == 0
    key_line, hash_line = capsys.readouterr().out.splitlines()
    key = key_line.split()[-1]
    assert hash_line.split()[-1] == hash_key(key)
