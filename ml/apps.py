from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "Churn models"

    def ready(self) -> None:
        from customers.privacy import privacy_register
        from customers.signals import shop_replaced
        from ml.privacy import scores_erase, scores_export

        privacy_register(section="ml", export=scores_export, erase=scores_erase)
        shop_replaced.connect(_forget_runs, dispatch_uid="ml.forget_runs")


def _forget_runs(sender, **kwargs) -> None:
    from ml.services import prune_runs

    prune_runs(keep=0)
