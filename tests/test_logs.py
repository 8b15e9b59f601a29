import logging

from desktop.utils.logs import REDACTED, redact, setup_logging


def test_secrets_are_redacted():
    key = "ab" * 32
    for text in [f"token hf_{'x' * 30}", "Authorization: Bearer abc.def-123456789",
                 f"private key 0x{key}", f"{key}", 'api_key="s3cr3tvalue99"', "password: hunter22!!"]:
        out = redact(text)
        assert REDACTED in out, text
        assert "x" * 30 not in out
        assert key not in out
        assert "s3cr3tvalue99" not in out
        assert "hunter22" not in out


def test_env_secret_values_redacted(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "plainlookingvalue")
    assert "plainlookingvalue" not in redact("sending plainlookingvalue to server")


def test_log_file_never_gets_the_secret(tmp_path):
    path = setup_logging(tmp_path, "t", "INFO")
    logging.getLogger("x").info("using token hf_%s", "A" * 34)
    for h in logging.getLogger().handlers:
        h.flush()
    text = path.read_text()
    assert "A" * 34 not in text
    assert REDACTED in text
    assert "hello world" == redact("hello world")
