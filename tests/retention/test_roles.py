import pytest
from django.contrib.auth.models import Group

from core.roles import ADMIN, AGENT


@pytest.mark.smoke
def test_the_migration_creates_admin_and_agent_groups(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {ADMIN, AGENT}


def test_an_admin_manages_shop_data_and_staff(admin_user):
    for perm in ("customers.change_customer", "customers.add_order", "auth.change_user"):
        assert admin_user.has_perm(perm), perm


def test_an_agent_reads_shop_data_but_cannot_change_it(agent_user):
    assert agent_user.has_perm("customers.view_customer")
    assert agent_user.has_perm("customers.view_order")
    assert not agent_user.has_perm("customers.change_customer")
    assert not agent_user.has_perm("customers.delete_order")
    assert not agent_user.has_perm("auth.change_user")
