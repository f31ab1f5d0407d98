"""Learn each offer's effect (and a per-customer uplift model) from finished interventions."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from core.cli import add_as_of, as_of
from core.time import moment
from retention.services.learning import uplift_learn


class Command(BaseCommand):
    help = (
        "Learn from every intervention whose window closed by --as-of: each offer's effect "
        "against the control arm, shrunk toward the admin's prior, and a per-customer model "
        "once there are enough outcomes. Proposals from then on use it."
    )

    def add_arguments(self, parser):
        add_as_of(parser)

    def handle(self, *args, **options):
        learned = uplift_learn(as_of=as_of(options), now=moment(options["as_of"]))
        modelled = ", ".join(map(str, learned.offers_modelled)) or "none yet"
        lines = [
            f"learned on {learned.as_of} from {learned.treated} treated and {learned.control} "
            f"control customers; per-customer model for offers: {modelled}"
        ]
        for offer_id, e in learned.effects.items():
            lines.append(
                f"offer {offer_id}: prior {e['prior']:.3f}, learned {e['response']:+.3f} "
                f"({e['response_low']:+.3f} to {e['response_high']:+.3f}); effect on retention "
                f"{e['effect']:+.2%} ({e['effect_low']:+.2%} to {e['effect_high']:+.2%}), "
                f"{e['treated']} treated / {e['control']} control"
            )
        return "\n".join(lines)
