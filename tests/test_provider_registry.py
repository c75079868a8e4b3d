import subprocess
import sys
from pathlib import Path

import pytest

from grading.providers import (
    PROVIDERS,
    Provider,
    UnknownProvider,
    available_providers,
    get_provider,
)
from grading.providers.builtin import BuiltinProvider


def test_providers_are_looked_up_by_name():
    provider = get_provider("builtin")

    assert isinstance(provider, BuiltinProvider)
    assert provider.name == "builtin"


def test_the_same_instance_is_returned_for_the_same_name():
    assert get_provider("openai") is get_provider("openai")


def test_every_registered_provider_implements_the_interface():
    for name in available_providers():
        provider = get_provider(name)

        assert isinstance(provider, Provider)
        assert provider.name == name


def test_available_providers_lists_the_registry():
    assert available_providers() == sorted(PROVIDERS) == ["anthropic", "builtin", "openai"]


def test_an_unknown_provider_is_a_key_error_with_a_sentence():
    with pytest.raises(KeyError) as caught:
        get_provider("gemini")

    assert isinstance(caught.value, UnknownProvider)
    assert str(caught.value) == (
        "There is no grading provider named “gemini”; choose one of: anthropic, builtin, openai."
    )


def test_importing_the_registry_does_not_load_django_or_the_sdk():
    code = (
        "import sys, grading.providers, grading.extraction;"
        "print(any(m in sys.modules for m in ('django', 'openai', 'anthropic', 'pypdf', 'docx')))"
    )
    root = Path(__file__).resolve().parents[1]

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )

    assert result.stdout.strip() == "False"
