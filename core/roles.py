"""The staff roles and what each may do.

Applied by data migrations (``sync_roles`` takes the migration's app registry), so a new
model's permissions reach the roles by adding its codenames here and a migration that
calls ``sync_roles`` again.
"""

from __future__ import annotations

ADMIN = "Admin"
AGENT = "Agent"

# Admins manage everything in the product's own apps plus staff accounts, API tokens and
# schedules. They see the groups but cannot change them: a group's permissions are the
# role, and an Admin who could edit them could grant itself anything. (Nor may an Admin
# set is_superuser or raw user permissions: see the user admin.) Tokens are issued and
# revoked, never edited; login lockouts can be lifted by deleting the attempt.
ADMIN_APPS = ("customers", "retention", "ml", "bots", "django_celery_beat")
ADMIN_EXTRA = {
    ("auth", "user"): ("add", "change", "delete", "view"),
    ("auth", "group"): ("view",),
    ("knox", "authtoken"): ("add", "delete", "view"),
    ("axes", "accessattempt"): ("delete", "view"),
    ("axes", "accesslog"): ("view",),
    ("axes", "accessfailurelog"): ("view",),
}

# Agents read shop data and scores, and work cases and interventions; rules, campaigns,
# offers, capacities and the contact policy stay with admins.
AGENT_PERMISSIONS = {
    "customers": ["view_customer", "view_order", "view_orderline", "view_event", "view_product"],
    "ml": ["view_customerscore", "view_scoringrun"],
    "retention": [
        "view_alert",
        "change_alert",
        "view_intervention",
        "change_intervention",
        "view_auditentry",
        "view_campaign",
        "view_campaignoutcome",
        "view_coupon",
        "view_offer",
        "view_outboxmessage",
        "view_riskrule",
        "view_casereason",
        "view_queue",
        "view_agentcapacity",
    ],
    "bots": ["add_linkcode", "view_linkcode"],
}


def sync_roles(apps, schema_editor=None) -> None:
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; create them now so the roles can
    # reference them inside the same migrate run.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    admin_perms = Permission.objects.filter(content_type__app_label__in=ADMIN_APPS)
    for (app_label, model), actions in ADMIN_EXTRA.items():
        admin_perms = admin_perms | Permission.objects.filter(
            content_type__app_label=app_label,
            content_type__model=model,
            codename__in=[f"{action}_{model}" for action in actions],
        )
    admin, _ = Group.objects.get_or_create(name=ADMIN)
    admin.permissions.set(admin_perms)

    agent, _ = Group.objects.get_or_create(name=AGENT)
    agent_perms = Permission.objects.none()
    for app_label, codenames in AGENT_PERMISSIONS.items():
        agent_perms = agent_perms | Permission.objects.filter(
            content_type__app_label=app_label, codename__in=codenames
        )
    agent.permissions.set(agent_perms)
