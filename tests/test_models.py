"""Tests for nsight_async._models and the open vocabularies of _vocab they use."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime

import attrs
import pytest

from nsight_async import (
    CheckCounts,
    Client,
    Device,
    DeviceAtClient,
    DeviceKind,
    MobSession,
    Patch,
    PatchRetryResult,
    PatchStatus,
    Plugin,
    ServiceDescription,
    ServiceParameter,
    SessionStatus,
    SessionType,
    Site,
    _models,
)

RECORDS = [
    Client,
    Site,
    Device,
    CheckCounts,
    DeviceAtClient,
    Patch,
    MobSession,
    PatchRetryResult,
    ServiceParameter,
    ServiceDescription,
]


def _site() -> Site:
    return Site(site_id=1, name="Head Office")


@pytest.mark.parametrize("cls", RECORDS)
def test_records_are_frozen_keyword_only_attrs_classes(cls: type) -> None:
    """Every record is an attrs class whose fields are all keyword-only."""
    assert attrs.has(cls)
    assert all(field.kw_only for field in attrs.fields(cls))


def test_records_cannot_be_mutated() -> None:
    """Assigning to a record's field raises FrozenInstanceError."""
    site = _site()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        site.name = "Other"  # type: ignore[misc]  # the point of the test


def test_records_reject_positional_arguments() -> None:
    """Records cannot be built positionally (field order is not an API)."""
    with pytest.raises(TypeError):
        Site(1, "Head Office")  # type: ignore[misc]  # the point of the test


def test_optional_fields_default_to_none() -> None:
    """Fields the server may leave out default to None."""
    session = MobSession(session_id=9)
    assert session.start is None
    assert session.plugin is None
    assert session.transferred_size is None


def test_extra_defaults_to_a_fresh_empty_mapping() -> None:
    """Each record gets its own empty ``extra``; defaults are never shared."""
    a, b = _site(), _site()
    assert a.extra == {}
    assert a.extra is not b.extra


def test_extra_is_compared_but_not_shown_in_repr() -> None:
    """``extra`` takes part in equality but stays out of repr (custom fields can be long)."""
    plain = Client(client_id=1)
    custom = Client(client_id=1, extra={"custom_field_1": "Rack B"})
    assert plain != custom
    assert "custom_field_1" not in repr(custom)
    assert "extra" not in repr(custom)


def test_check_counts_compare_and_hash_by_value() -> None:
    """CheckCounts compare and hash by value."""
    assert CheckCounts(passed=1) == CheckCounts(passed=1)
    assert hash(CheckCounts(passed=1)) == hash(CheckCounts(passed=1))


@pytest.mark.parametrize(
    "record",
    [
        Client(client_id=1),
        _site(),
        Patch(patch_id=1, extra={"patchicon": "failed"}),
        MobSession(session_id=1),
        ServiceDescription(name="list_clients"),
    ],
    ids=lambda r: type(r).__name__,
)
def test_frozen_records_are_hashable(record: object) -> None:
    """A frozen record can go in a set or be a dict key, even with an ``extra`` mapping."""
    assert len({record, record}) == 1


def test_device_at_client_requires_its_context() -> None:
    """A DeviceAtClient cannot be built without its client and site."""
    with pytest.raises(TypeError):
        DeviceAtClient(kind=DeviceKind.SERVER, device_id=1)  # type: ignore[call-arg]  # the test
    device = DeviceAtClient(
        kind=DeviceKind.SERVER,
        device_id=1,
        client_id=2,
        client_name=None,
        site_id=3,
        site_name="Main",
    )
    assert device.checks == CheckCounts()
    assert device.mob is False


def test_size_helpers_divide_by_binary_units() -> None:
    """MiB and GiB helpers divide bytes by 2**20 and 2**30, as N-able's docs suggest."""
    session = MobSession(
        session_id=1,
        selection_size=3 * 2**30,
        processed_size=2**31,
        transferred_size=5 * 2**20,
    )
    assert session.selection_gib == 3.0
    assert session.processed_gib == 2.0
    assert session.transferred_mib == 5.0
    assert session.transferred_gib == 5 / 1024
    assert _models.MIB == 2**20
    assert _models.GIB == 2**30


def test_size_helpers_are_none_without_a_size() -> None:
    """The size helpers return None when the size is unknown."""
    session = MobSession(session_id=1)
    assert session.selection_gib is None
    assert session.processed_gib is None
    assert session.transferred_mib is None
    assert session.transferred_gib is None


def test_size_helpers_handle_sizes_beyond_2_to_the_63() -> None:
    """Sizes beyond 2**63 still convert (ints are unbounded)."""
    assert MobSession(session_id=1, selection_size=2**64).selection_gib == 2**34


def test_patch_retry_result_unaccounted_keeps_request_order() -> None:
    """``unaccounted`` lists requested ids mentioned in neither list, in request order."""
    result = PatchRetryResult(
        device_id=1,
        requested=(9, 4, 5, 1, 7),
        retrying=(4, 5),
        already_applied=(1,),
        message="Retrying patches: 4,5 Patches already applied: 1",
    )
    assert result.unaccounted == (9, 7)


def test_patch_retry_result_all_accounted() -> None:
    """When every requested id is mentioned, nothing is unaccounted."""
    result = PatchRetryResult(
        device_id=1, requested=(1, 2), retrying=(2,), already_applied=(1,), message=""
    )
    assert result.unaccounted == ()


def test_models_import_nothing_but_attrs_and_vocabularies() -> None:
    """_models imports only the standard library, attrs and _vocab (conversion lives elsewhere)."""
    tree = ast.parse(inspect.getsource(_models))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
    assert imported <= {"__future__", "collections.abc", "datetime", "attrs", "._vocab"}


def test_datetime_fields_accept_aware_values() -> None:
    """A session keeps the aware datetimes it is given."""
    start = datetime(2024, 3, 17, 1, 0, 2, tzinfo=UTC)
    assert MobSession(session_id=1, start=start).start is start


# -- open vocabularies (nsight_async._vocab) -------------------------------


def test_known_plugin_is_the_named_constant() -> None:
    """A documented value gives the named member, equal to its string."""
    assert Plugin("FILE_SYSTEM") is Plugin.FILE_SYSTEM
    assert Plugin.FILE_SYSTEM == "FILE_SYSTEM"
    assert Plugin.FILE_SYSTEM.is_known


def test_unknown_plugin_is_accepted_and_cached() -> None:
    """An undocumented value becomes a pseudo-member: equal to its string, cached, not known."""
    hyper_v = Plugin("HYPER_V")
    assert hyper_v == "HYPER_V"
    assert isinstance(hyper_v, Plugin)
    assert hyper_v.value == "HYPER_V"
    assert hyper_v.name == "HYPER_V"
    assert not hyper_v.is_known
    assert Plugin("HYPER_V") is hyper_v
    assert "HYPER_V" not in Plugin.__members__


def test_unknown_statuses_and_types_are_accepted() -> None:
    """Session status and type are open sets too."""
    assert SessionStatus("IN_PROGRESS") == "IN_PROGRESS"
    assert not SessionStatus("IN_PROGRESS").is_known
    assert SessionType("VERIFY") == "VERIFY"


def test_session_status_succeeded() -> None:
    """COMPLETED and COMPLETED_WITH_ERRORS count as success; others and unknowns do not."""
    assert SessionStatus.COMPLETED.succeeded
    assert SessionStatus.COMPLETED_WITH_ERRORS.succeeded
    assert not SessionStatus.FAILED.succeeded
    assert not SessionStatus.CANCELED.succeeded
    assert not SessionStatus("IN_PROGRESS").succeeded


def test_patch_status_codes() -> None:
    """Patch status codes are ints; an unknown code is accepted with an UNKNOWN_ name."""
    assert [int(s) for s in PatchStatus] == [1, 2, 4, 8, 16, 64]
    assert PatchStatus(8) is PatchStatus.INSTALLED
    assert PatchStatus.REBOOT_REQUIRED == 64
    unknown = PatchStatus(128)
    assert unknown == 128
    assert unknown.name == "UNKNOWN_128"
    assert not unknown.is_known
    assert PatchStatus(128) is unknown


def test_open_vocabularies_reject_wrong_types() -> None:
    """A string vocabulary rejects non-strings and an int one rejects non-ints."""
    with pytest.raises(ValueError, match="3 is not a valid Plugin"):
        Plugin(3)  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ValueError, match="'8' is not a valid PatchStatus"):
        PatchStatus("8")  # type: ignore[arg-type]  # the point of the test


def test_device_kind_is_closed_and_case_sensitive() -> None:
    """DeviceKind holds the three ``devicetype`` values and rejects other spellings."""
    assert [k.value for k in DeviceKind] == ["server", "workstation", "mobile_device"]
    with pytest.raises(ValueError, match="'Server' is not a valid DeviceKind"):
        DeviceKind("Server")
