"""infra/*.bicep and local.settings.sample.json agree with the code (the Bicep cannot be compiled here).

- Every setting the app reads (platforms/azure/settings.py SETTINGS, and every environment read found
  by scanning functions/ and platforms/azure/) is in local.settings.sample.json and in the Function
  App's app settings in Bicep, so a new setting cannot be forgotten in either.
- Every Event Grid subscription in Bicep targets a function of function_app.py, every Event Grid
  function has one, and each subscription's includedEventTypes equal FUNCTION_EVENT_TYPES for it.
- Hook secrets are Key Vault references in Bicep, never plain values.

The checkers are plain functions over text; the last tests feed them modified copies to show that
they do catch what they are meant to catch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from devhost.indexing import indexed_functions
from functions.service.subscriptions import FUNCTION_EVENT_TYPES
from platforms.azure.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SAMPLE = ROOT / "local.settings.sample.json"
SCANNED = (ROOT / "functions", ROOT / "platforms" / "azure")

# Read by the code but deliberately not an app setting of the Function App, with the reason.
NOT_APP_SETTINGS = {
    "EVENTGRID_TOPIC_KEY": "CLI only (mlops publish); the app sends events with its managed identity",
    "WEBSITE_AUTH_ENABLED": "set by App Service when Easy Auth is on; an app setting would claim it without it",
    "MLOPS_LOCAL_FAULT": "the local deployer's fault injection; the settings refuse it on Azure",
    "WEBSITE_INSTANCE_ID": "set by App Service on each instance; names the instance on its claims",
    "MLOPS_LOCAL_CRASH_AFTER": "the local host's crash switch for the crash tests; the settings refuse it on Azure",
    "MLOPS_LOCAL_EVENT_CHAOS": "the local event bus's chaos switch; the settings refuse it on Azure",
}
# App settings the Functions host or platform reads rather than this code.
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "MLOPS_RECONCILE_SCHEDULE",  # the host resolves the reconcile timer's %MLOPS_RECONCILE_SCHEDULE% binding
    "MLOPS_FOLLOW_SCHEDULE",  # and the follow timer's %MLOPS_FOLLOW_SCHEDULE%
}
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY")

# os.environ["X"], os.environ.get("X"), os.getenv("X"), environ.setdefault("X"), env.get("X"), env["X"]
_ENV_READ = re.compile(
    r"""\b(?:os\.)?(?:environ|getenv|env)\s*(?:\.(?:get|setdefault|pop))?\s*[\[(]\s*["']([A-Z][A-Z0-9_]+)["']"""
)
# helpers handed the mapping and a name: _url(env, "MLOPS_HOST_URL", ...)
_ENV_HELPER = re.compile(r"""\b\w+\(\s*(?:env|environ|os\.environ)\s*,\s*["']([A-Z][A-Z0-9_]+)["']""")


# ---- what the code reads ----------------------------------------------------------------------


def settings_read_in(source: str) -> set[str]:
    """Setting names one Python source reads from the environment."""
    names: set[str] = set()
    for pattern in (_ENV_READ, _ENV_HELPER):
        names.update(pattern.findall(source))
    return names


def settings_read_by_code(directories: Iterable[Path] = SCANNED) -> dict[str, str]:
    """Every setting name the app reads -> where it was found."""
    found = {name: "platforms/azure/settings.py (SETTINGS)" for name in SETTINGS}
    for directory in directories:
        for path in sorted(directory.rglob("*.py")):
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            for name in settings_read_in(path.read_text(encoding="utf-8")):
                found.setdefault(name, str(where))
    return found


# ---- what the sample and the Bicep declare ----------------------------------------------------


def sample_settings(text: str) -> set[str]:
    return set(json.loads(text)["Values"])


def _matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``start``, skipping Bicep strings and comments."""
    closing = {"[": "]", "{": "}", "(": ")"}
    stack = [closing[text[start]]]
    i = start + 1
    while i < len(text):
        if text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        if text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        if text.startswith("'''", i):
            i = text.index("'''", i + 3) + 3
            continue
        char = text[i]
        if char == "'":
            i = _string_end(text, i)
            continue
        if char in closing:
            stack.append(closing[char])
        elif char in ")]}":
            if char != stack.pop():
                raise ValueError(f"unbalanced {char!r} at offset {i}")
            if not stack:
                return i
        i += 1
    raise ValueError(f"no match for {text[start]!r} at offset {start}")


def _string_end(text: str, start: int) -> int:
    """Index just past the single-quoted Bicep string at ``start`` (with ${...} interpolations)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == "'":
            return i + 1
        elif text.startswith("${", i):
            i = _matching(text, i + 1) + 1
        else:
            i += 1
    raise ValueError(f"unterminated string at offset {start}")


def _strings(text: str) -> list[str]:
    return re.findall(r"'([^'$]*)'", text)


def _expression_end(text: str, start: int) -> int:
    """End of the Bicep expression starting at ``start``: a newline, comma or closing bracket at its level."""
    i = start
    while i < len(text):
        char = text[i]
        if char == "'":
            i = _string_end(text, i)
        elif char in "[{(":
            i = _matching(text, i) + 1
        elif char in "\n,)]}" or text.startswith("//", i):
            return i
        else:
            i += 1
    return i


def _property(entry: str, key: str) -> str | None:
    """The expression of ``key: ...`` in an object literal (first match), as written."""
    match = re.search(rf"\b{key}\s*:\s*", entry)
    if not match:
        return None
    return entry[match.end() : _expression_end(entry, match.end())].strip()


@dataclass(frozen=True)
class AppSetting:
    name: str
    value: str  # the Bicep expression, as written


def bicep_app_settings(text: str) -> dict[str, AppSetting]:
    """The {name, value} entries of every ``appSettings: [...]`` array in a Bicep text."""
    settings: dict[str, AppSetting] = {}
    for match in re.finditer(r"\bappSettings\s*:\s*\[", text):
        start = match.end() - 1
        body = text[start + 1 : _matching(text, start)]
        i = 0
        while (brace := body.find("{", i)) >= 0:
            end = _matching(body, brace)
            entry = body[brace : end + 1]
            name = re.search(r"\bname\s*:\s*'([^']+)'", entry)
            if name:
                settings[name[1]] = AppSetting(name[1], _property(entry, "value") or "")
            i = end + 1
    return settings


@dataclass(frozen=True)
class Subscription:
    symbol: str
    functions: tuple[str, ...]  # /functions/<name> targets in the resource
    event_types: tuple[str, ...]
    has_retry_policy: bool
    has_dead_letter: bool


def bicep_event_subscriptions(text: str) -> list[Subscription]:
    """Every Microsoft.EventGrid event subscription resource (custom or system topic) in a Bicep text."""
    found = []
    declaration = re.compile(
        r"^resource\s+(\w+)\s+'Microsoft\.EventGrid/(?:\w+/)?eventSubscriptions@[^']+'\s*=\s*", re.MULTILINE
    )
    for match in declaration.finditer(text):
        i = match.end()
        if text.startswith("if", i):
            i = _matching(text, text.index("(", i)) + 1
        brace = text.index("{", i)
        block = text[brace : _matching(text, brace) + 1]
        types: tuple[str, ...] = ()
        included = re.search(r"\bincludedEventTypes\s*:\s*\[", block)
        if included:
            start = included.end() - 1
            types = tuple(_strings(block[start : _matching(block, start) + 1]))
        found.append(
            Subscription(
                symbol=match[1],
                functions=tuple(re.findall(r"/functions/([A-Za-z_]\w*)", block)),
                event_types=types,
                has_retry_policy=bool(re.search(r"\bretryPolicy\s*:", block)),
                has_dead_letter="deadLetterDestination" in block,
            )
        )
    return found


def bicep_texts() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in sorted(INFRA.rglob("*.bicep"))}


# ---- the checks ---------------------------------------------------------------------------------


def missing_settings(read: Mapping[str, str], sample_text: str, bicep: Mapping[str, str]) -> list[str]:
    """One line per setting the code reads that the sample or the Bicep app settings lack."""
    in_sample = sample_settings(sample_text)
    in_bicep: set[str] = set()
    for text in bicep.values():
        in_bicep.update(bicep_app_settings(text))
    problems = []
    for name, where in sorted(read.items()):
        if name not in in_sample:
            problems.append(f"{name} (read in {where}) is not in local.settings.sample.json")
        if name not in in_bicep and name not in NOT_APP_SETTINGS:
            problems.append(f"{name} (read in {where}) is not an app setting in infra/*.bicep")
    return problems


def subscription_problems(
    bicep: Mapping[str, str], functions: Mapping[str, str], expected: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """One line per event subscription that misses its function, its types, or its delivery settings.

    ``functions`` maps every function name of the app to its trigger binding name.
    """
    problems = []
    subscribed: dict[str, int] = {}
    for file, text in bicep.items():
        for sub in bicep_event_subscriptions(text):
            where = f"{file}: {sub.symbol}"
            if len(sub.functions) != 1:
                problems.append(f"{where} targets {len(sub.functions)} functions, not one")
                continue
            name = sub.functions[0]
            subscribed[name] = subscribed.get(name, 0) + 1
            if name not in functions:
                problems.append(f"{where} targets {name}, which function_app.py does not define")
            elif functions[name] != "eventGridTrigger":
                problems.append(f"{where} targets {name}, which is a {functions[name]}, not an Event Grid function")
            if set(sub.event_types) != set(expected.get(name, ())) or len(sub.event_types) != len(set(sub.event_types)):
                problems.append(
                    f"{where}: includedEventTypes {sorted(sub.event_types)} != "
                    f"FUNCTION_EVENT_TYPES[{name!r}] {sorted(expected.get(name, ()))}"
                )
            if not sub.has_retry_policy:
                problems.append(f"{where} has no retryPolicy")
            if not sub.has_dead_letter:
                problems.append(f"{where} has no deadLetterDestination")
    for name, trigger in sorted(functions.items()):
        if trigger == "eventGridTrigger" and subscribed.get(name, 0) != 1:
            problems.append(f"{name} has {subscribed.get(name, 0)} event subscriptions in infra/*.bicep, not one")
    return problems


def plain_secrets(bicep: Mapping[str, str]) -> list[str]:
    """App settings named like secrets whose value is not a Key Vault reference (optionally: or empty)."""
    reference = re.compile(r"(?:[^']*\?\s*)?'@Microsoft\.KeyVault\([^']*\)'(?:\s*:\s*'')?")
    problems = []
    for file, text in bicep.items():
        for name, setting in bicep_app_settings(text).items():
            secret_like = any(word in name.upper() for word in SECRET_WORDS) and name not in HOST_SETTINGS
            if secret_like and not reference.fullmatch(setting.value):
                problems.append(f"{file}: {name} = {setting.value} is not a Key Vault reference")
    return problems


def app_functions() -> dict[str, str]:
    """Function name -> its trigger's binding type, for every function function_app indexes."""
    import function_app

    bindings: dict[str, str] = {}
    for function in indexed_functions(function_app.app):
        name, trigger = function.get_function_name(), function.get_trigger()
        assert name and trigger is not None, f"function {name!r} has no name or no trigger"
        bindings[name] = trigger.get_binding_name()
    return bindings


# ---- tests on the real files ----------------------------------------------------------------------


def test_the_scan_finds_the_settings_the_code_is_known_to_read():
    read = settings_read_by_code()
    assert set(SETTINGS) <= set(read)
    assert {"MLOPS_PLATFORM", "MLOPS_HOME", "MLOPS_HOST_URL", "MLOPS_PUBLIC_URL", "MLOPS_PRODUCTION_PORT",
            "MLOPS_TRAINING_DATA", "MLOPS_APPROVAL_TIMEOUT_HOURS", "MLOPS_GATE_POLICY"} <= set(read)  # fmt: skip


def test_every_setting_the_code_reads_is_in_the_sample_and_in_the_bicep_app_settings():
    assert missing_settings(settings_read_by_code(), SAMPLE.read_text(encoding="utf-8"), bicep_texts()) == []


def test_every_bicep_app_setting_is_read_by_the_code_or_the_host():
    read = settings_read_by_code()
    declared = {name for text in bicep_texts().values() for name in bicep_app_settings(text)}
    assert declared - set(read) - HOST_SETTINGS == set()


def test_the_app_runs_as_azure_python_311_on_flex_consumption():
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    settings = bicep_app_settings(main)
    assert settings["MLOPS_PLATFORM"].value == "'azure'"
    assert re.search(r"runtime\s*:\s*{\s*name\s*:\s*'python'\s*version\s*:\s*'3\.11'\s*}", main)
    # Flex Consumption declares the language in functionAppConfig.runtime; the old settings are deprecated there.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(settings)
    assert "AzureWebJobsStorage" not in settings  # identity-based: AzureWebJobsStorage__accountName only


def test_secrets_are_key_vault_references_in_bicep():
    bicep = bicep_texts()
    assert plain_secrets(bicep) == []
    settings = bicep_app_settings(bicep["infra/main.bicep"])
    assert {"MLOPS_HOOK_SECRET", "MLOPS_GITHUB_WEBHOOK_SECRET"} <= set(settings)


def test_every_event_grid_function_has_its_subscription_with_its_event_types():
    functions = app_functions()
    assert {name for name, trigger in functions.items() if trigger == "eventGridTrigger"} == set(FUNCTION_EVENT_TYPES)
    assert subscription_problems(bicep_texts(), functions, FUNCTION_EVENT_TYPES) == []


def test_the_parser_sees_all_four_subscriptions():
    subs = {s.functions[0]: s for s in bicep_event_subscriptions((INFRA / "main.bicep").read_text(encoding="utf-8"))}
    assert set(subs) == {"on_build_event", "on_ml_event", "on_registry_event", "on_storage_event"}
    assert subs["on_ml_event"].event_types == FUNCTION_EVENT_TYPES["on_ml_event"]


def test_the_storage_subscription_takes_only_the_data_container_under_its_prefix():
    # The account also holds the app package and the dead letters: their blobs must never start a release.
    text = (INFRA / "main.bicep").read_text(encoding="utf-8")
    block = text[text.index("resource onStorageEvent") :]
    block = block[: block.index("\n}\n")]
    assert "if (deployEventSubscriptions && watchData)" in block
    assert "subjectBeginsWith: '/blobServices/default/containers/${dataContainer}/blobs/${dataPrefix}'" in block


# ---- the checkers catch what they are for (modified copies) --------------------------------------


def _without_app_setting(text: str, name: str) -> str:
    entry = re.compile(r"\n\s*{\s*name\s*:\s*'" + re.escape(name) + r"'.*?\n\s*}", re.DOTALL)
    changed, count = entry.subn("", text, count=1)
    assert count == 1, name
    return changed


def test_a_setting_missing_from_the_bicep_is_caught():
    bicep = bicep_texts()
    bicep["infra/main.bicep"] = _without_app_setting(bicep["infra/main.bicep"], "AZUREML_COMPUTE")
    problems = missing_settings(settings_read_by_code(), SAMPLE.read_text(encoding="utf-8"), bicep)
    assert problems == [
        "AZUREML_COMPUTE (read in platforms/azure/settings.py (SETTINGS)) is not an app setting in infra/*.bicep"
    ]


def test_a_setting_missing_from_the_sample_is_caught():
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    del sample["Values"]["MLOPS_GATE_POLICY"]
    problems = missing_settings(settings_read_by_code(), json.dumps(sample), bicep_texts())
    assert problems == ["MLOPS_GATE_POLICY (read in functions/settings.py) is not in local.settings.sample.json"]


def test_a_new_setting_read_in_the_code_is_caught(tmp_path: Path):
    module = tmp_path / "new_adapter.py"
    module.write_text(
        'import os\n\nLIMIT = os.environ.get("MLOPS_NEW_LIMIT", "3")\nREGION = os.getenv("AZURE_NEW_REGION")\n'
        'def read(env):\n    return _int(env, "MLOPS_RETRIES", 3), env["ACR_NEW_TOKEN"]\n'
        '# set on a container, not read here:\nVARIABLES = [EnvironmentVariable(name="MLOPS_RELEASE_ID", value="x")]\n'
    )
    read = settings_read_by_code([*SCANNED, tmp_path])
    problems = missing_settings(read, SAMPLE.read_text(encoding="utf-8"), bicep_texts())
    new = ("ACR_NEW_TOKEN", "AZURE_NEW_REGION", "MLOPS_NEW_LIMIT", "MLOPS_RETRIES")
    assert problems == [
        f"{name} (read in {module}) is not {where}"
        for name in new
        for where in ("in local.settings.sample.json", "an app setting in infra/*.bicep")
    ]


def test_the_parser_copes_with_other_formatting():
    text = """
resource site 'Microsoft.Web/sites@2024-04-01' = {
  properties: { siteConfig: { appSettings: [ { name: 'A', value: 'x}]' }, {
        name: 'B'   // a comment with a } brace
        value: cond ? '${join(['p', 'q'], '}')}' : ''
      }
      { value: 'v', name: 'C' } ] } }
}
"""
    settings = bicep_app_settings(text)
    assert set(settings) == {"A", "B", "C"}
    assert settings["B"].value.startswith("cond ?")


def test_a_subscription_to_an_unknown_function_or_with_other_types_is_caught():
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    renamed = main.replace("/functions/on_registry_event'", "/functions/on_acr_event'")
    problems = subscription_problems({"main": renamed}, app_functions(), FUNCTION_EVENT_TYPES)
    assert "main: onRegistryEvent targets on_acr_event, which function_app.py does not define" in problems
    assert "on_registry_event has 0 event subscriptions in infra/*.bicep, not one" in problems

    fewer = main.replace("        'Microsoft.ContainerRegistry.ImageDeleted'\n", "", 1)
    problems = subscription_problems({"main": fewer}, app_functions(), FUNCTION_EVENT_TYPES)
    assert len(problems) == 1 and problems[0].startswith("main: onRegistryEvent: includedEventTypes")


def test_a_subscription_without_retry_or_dead_letter_is_caught():
    block = """
resource sub 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deploy) {
  parent: topic
  name: 'x'
  properties: {
    destination: { endpointType: 'AzureFunction', properties: { resourceId: '${app.id}/functions/on_build_event' } }
    filter: { includedEventTypes: [ 'MLOps.BuildCompleted', 'MLOps.ReleaseApproved' ] }
  }
}
"""
    problems = subscription_problems({"t": block}, {"on_build_event": "eventGridTrigger"}, FUNCTION_EVENT_TYPES)
    assert problems == ["t: sub has no retryPolicy", "t: sub has no deadLetterDestination"]


@pytest.mark.parametrize("value", ["'plain-text'", "hookSecret", "hookSecretInVault ? hookSecret : ''"])
def test_a_plain_secret_is_caught(value: str):
    text = f"appSettings: [\n  {{\n    name: 'MLOPS_HOOK_SECRET'\n    value: {value}\n  }}\n]"
    assert plain_secrets({"t": text}) == [f"t: MLOPS_HOOK_SECRET = {value} is not a Key Vault reference"]
