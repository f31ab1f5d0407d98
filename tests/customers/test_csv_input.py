"""CSV files that are cut off, hold NUL bytes, or are not UTF-8 (audit P3-6)."""

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer, Order

HEADER = "external_id,name,email\n"


def customers_file(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "customers.csv"
    path.write_bytes(text.encode(encoding))
    return str(path)


def stored():
    return dict(Customer.objects.values_list("external_id", "email"))


@pytest.mark.smoke
def test_a_file_cut_in_its_last_line_is_refused_naming_the_line(db, tmp_path):
    path = customers_file(tmp_path, HEADER + "T1,Ann,ann@example.com\nT2,Bob,b@example.co")
    with pytest.raises(CommandError, match=r"line 3: .*cut off") as error:
        call_command("import_csv", "customers", path)
    assert "nothing was imported" in str(error.value)
    assert stored() == {}


def test_with_skip_bad_rows_the_cut_last_line_is_rejected_and_the_rest_imported(
    db, tmp_path, capsys
):
    path = customers_file(tmp_path, HEADER + "T1,Ann,ann@example.com\nT2,Bob,b@example.co")
    call_command("import_csv", "customers", path, "--skip-bad-rows")
    assert "line 3: " in capsys.readouterr().out
    assert stored() == {"T1": "ann@example.com"}


def test_a_row_with_fewer_fields_than_the_header_is_refused(db, tmp_path):
    path = customers_file(tmp_path, HEADER + "T1,Ann\nT2,Bob,bob@example.com\n")
    with pytest.raises(CommandError, match=r"line 2: .*2 fields.*header has 3"):
        call_command("import_csv", "customers", path)
    assert stored() == {}


@pytest.mark.smoke
def test_a_nul_byte_is_refused_naming_line_and_column(db, tmp_path):
    path = customers_file(tmp_path, HEADER + "T1,Ann,ann@example.com\nT2,a\x00b,b@example.com\n")
    with pytest.raises(CommandError, match=r"line 3, column 'name': .*NUL"):
        call_command("import_csv", "customers", path)
    assert stored() == {}


def test_a_transaction_log_cut_in_its_last_line_is_refused(db, tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("client,day,paid\nK-1,2026-01-01,12.00\nK-2,2026-01-02,4")
    with pytest.raises(CommandError, match=r"line 3: .*cut off"):
        call_command(
            "import_transactions", str(path), "--customer-col", "client", "--date-col", "day",
            "--amount-col", "paid",
        )  # fmt: skip
    assert Order.objects.count() == 0


def test_both_commands_read_other_encodings_when_told(db, tmp_path):
    path = customers_file(tmp_path, HEADER + "T1,Zoë,zoe@example.com\n", encoding="latin-1")
    with pytest.raises(CommandError, match="--encoding"):
        call_command("import_csv", "customers", path)
    call_command("import_csv", "customers", path, "--encoding", "latin-1")
    assert Customer.objects.get().name == "Zoë"
    log = tmp_path / "log.csv"
    log.write_bytes("client,day,paid\nZoë-1,2026-01-01,12.00\n".encode("cp1252"))
    call_command(
        "import_transactions", str(log), "--customer-col", "client", "--date-col", "day",
        "--amount-col", "paid", "--encoding", "cp1252",
    )  # fmt: skip
    assert Order.objects.get().customer.external_id == "Zoë-1"
