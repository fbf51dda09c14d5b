"""``LightningCLI``: a command line for a LightningModule, as in Lightning, built on jsonargparse.

::

    from fulmen.cli import LightningCLI

    if __name__ == "__main__":
        LightningCLI(MyModel, MyDataModule)

gives ``python main.py fit|validate|test|predict`` with ``--model.*``, ``--data.*`` and ``--trainer.*``
read from the constructors' signatures, ``--config`` files, ``--print_config``, ``--optimizer`` and
``--lr_scheduler``, ``--seed_everything`` and ``--ckpt_path``. jsonargparse is an optional extra:
``pip install "fulmen[cli]"``. ``import fulmen`` never imports this module.
"""

from __future__ import annotations

import importlib
import inspect
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from types import MethodType
from typing import Any

import torch
from fulmen_core import Callback, LightningDataModule, LightningModule, seed_everything
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from fulmen._cli_types import parser_friendly_hints
from fulmen._trainer import Trainer
from fulmen._version import __version__

try:
    from jsonargparse import ArgumentParser, Namespace
    # Exported at run time but left out of __all__ by newer versions (which also take
    # action="config"); 4.27, the oldest supported, has only the class.
    from jsonargparse import ActionConfigFile  # type: ignore[attr-defined]  # see above
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'fulmen.cli needs jsonargparse; install it with: pip install "fulmen[cli]"'
    ) from _missing

__all__ = ["LightningArgumentParser", "LightningCLI", "ReduceLROnPlateau", "SaveConfigCallback"]

#: What ``args=`` accepts: command-line words, or a structured config.
ArgsType = Sequence[str] | Mapping[str, Any] | Namespace | None


class ReduceLROnPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """torch's ``ReduceLROnPlateau`` with the metric to ``monitor``, which the Trainer needs to step it."""

    def __init__(self, optimizer: Optimizer, monitor: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(optimizer, *args, **kwargs)
        self.monitor = monitor


class LightningArgumentParser(ArgumentParser):
    """jsonargparse's ``ArgumentParser`` that knows fulmen's classes (environment prefix ``PL``)."""

    def __init__(
        self,
        *args: Any,
        description: str = "fulmen Trainer command line tool",
        env_prefix: str = "PL",
        default_env: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, description=description, env_prefix=env_prefix, default_env=default_env, **kwargs)
        #: Keys whose value is a Callback to add to the Trainer's callbacks.
        self.callback_keys: list[str] = []
        #: Keys of optimizer / lr scheduler groups, with their base class(es).
        self.optimizer_keys: dict[str, tuple[type, ...]] = {}
        self.lr_scheduler_keys: dict[str, tuple[type, ...]] = {}

    def add_trainer_args(self, trainer_class: type[Trainer], nested_key: str = "trainer") -> list[str]:
        """Add the Trainer's flags under ``nested_key``; Protocol-typed flags accept class paths."""
        special = parser_friendly_hints(trainer_class.__init__)
        added: list[str] = self.add_class_arguments(
            trainer_class, nested_key, fail_untyped=False, instantiate=False, sub_configs=True, skip=set(special)
        )
        parameters = inspect.signature(trainer_class.__init__).parameters
        for name, hint in special.items():
            default = parameters[name].default
            self.add_argument(
                f"--{nested_key}.{name}",
                type=hint,
                default=None if default is inspect.Parameter.empty else default,
                help=f"Trainer's {name}: a name, a class path with init_args, or a list of them",
            )
            added.append(f"{nested_key}.{name}")
        return added

    def add_lightning_class_args(
        self, lightning_class: type[Any], nested_key: str, subclass_mode: bool = False, required: bool = True
    ) -> list[str]:
        """Add the constructor arguments of a LightningModule, LightningDataModule or Callback class
        (or, with ``subclass_mode``, a ``class_path`` choosing any subclass)."""
        if not (isinstance(lightning_class, type) and issubclass(lightning_class, (LightningModule, LightningDataModule))) and not _is_callback_class(lightning_class):
            raise TypeError(
                f"cannot add arguments from {lightning_class!r}: give a LightningModule, "
                "LightningDataModule or Callback class"
            )
        if _is_callback_class(lightning_class):
            self.callback_keys.append(nested_key)
        added: list[str]
        if subclass_mode:
            added = self.add_subclass_arguments(lightning_class, nested_key, fail_untyped=False, required=required)
        else:
            added = self.add_class_arguments(lightning_class, nested_key, fail_untyped=False, sub_configs=True)
        return added

    def add_optimizer_args(
        self, optimizer_class: type[Optimizer] | tuple[type[Optimizer], ...] = (Optimizer,), nested_key: str = "optimizer"
    ) -> None:
        """Add ``--optimizer=Adam --optimizer.lr=...``: any subclass of the given optimizer class(es)."""
        bases = optimizer_class if isinstance(optimizer_class, tuple) else (optimizer_class,)
        # Not instantiated by the parser: an optimizer needs the module's parameters first.
        self.add_subclass_arguments(bases, nested_key, instantiate=False, fail_untyped=False, skip={"params"}, required=False)
        self.optimizer_keys[nested_key] = bases

    def add_lr_scheduler_args(
        self,
        lr_scheduler_class: type[Any] | tuple[type[Any], ...] = (LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau),
        nested_key: str = "lr_scheduler",
    ) -> None:
        """Add ``--lr_scheduler=StepLR --lr_scheduler.step_size=...``."""
        bases = lr_scheduler_class if isinstance(lr_scheduler_class, tuple) else (lr_scheduler_class,)
        self.add_subclass_arguments(bases, nested_key, instantiate=False, fail_untyped=False, skip={"optimizer"}, required=False)
        self.lr_scheduler_keys[nested_key] = bases


def _keep_nulls(method: Callable[..., object]) -> dict[str, bool]:
    """The keyword that writes null values too: ``skip_unset`` since jsonargparse 4.49, ``skip_none`` before."""
    return {"skip_unset" if "skip_unset" in inspect.signature(method).parameters else "skip_none": False}


def _is_callback_class(value: object) -> bool:
    return isinstance(value, type) and Callback in value.__mro__


class SaveConfigCallback(Callback):
    """Write the run's resolved config to ``trainer.log_dir/config.yaml`` when a stage starts.

    Only rank zero writes. An existing file is an error (so a second run does not silently replace the
    record of the first) unless ``overwrite=True``. Override :meth:`save_config` to store it elsewhere too.
    """

    def __init__(
        self,
        parser: LightningArgumentParser,
        config: Namespace,
        config_filename: str = "config.yaml",
        overwrite: bool = False,
        multifile: bool = False,
        save_to_log_dir: bool = True,
    ) -> None:
        if not save_to_log_dir and type(self).save_config is SaveConfigCallback.save_config:
            raise ValueError(
                "SaveConfigCallback(save_to_log_dir=False) saves nothing; subclass it and implement "
                "save_config to store the config elsewhere, or pass save_config_callback=None"
            )
        self.parser = parser
        self.config = config
        self.config_filename = config_filename
        self.overwrite = overwrite
        self.multifile = multifile
        self.save_to_log_dir = save_to_log_dir
        self.already_saved = False

    def setup(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        if self.save_to_log_dir:
            log_dir = trainer.log_dir
            path = os.path.join(log_dir, self.config_filename)
            exists = trainer.strategy.broadcast(trainer.is_global_zero and os.path.isfile(path))
            if exists and not self.overwrite:
                raise RuntimeError(
                    f"{path} already exists (the config of an earlier run); delete it, use another "
                    "--trainer.default_root_dir, pass LightningCLI(save_config_kwargs={'overwrite': True}) "
                    "to replace it, or save_config_callback=None to save no config"
                )
            if trainer.is_global_zero:
                os.makedirs(log_dir, exist_ok=True)
                self.parser.save(self.config, path, overwrite=self.overwrite, multifile=self.multifile, **_keep_nulls(self.parser.save))
        if trainer.is_global_zero:
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)

    def save_config(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        """Called on rank zero only: override to store the config somewhere else as well."""


class LightningCLI:
    """Build a Trainer, a module and a datamodule from the command line and config files, then run
    ``fit``, ``validate``, ``test`` or ``predict``.

    Args:
        model_class: The LightningModule class, or ``None`` to choose any with ``--model=pkg.Class``.
        datamodule_class: The LightningDataModule class, or ``None`` for an optional ``--data=pkg.Class``.
        save_config_callback: Callback class that saves the config beside the logs (``None``: no saving).
        save_config_kwargs: Keyword arguments for it, e.g. ``{"overwrite": True}``.
        trainer_class: The Trainer class whose flags become ``--trainer.*``.
        trainer_defaults: New defaults for Trainer flags; ``callbacks`` given here are always added.
        seed_everything_default: ``--seed_everything`` default: an int, True (``seed_everything()``),
            or False (no seeding).
        parser_kwargs: Keyword arguments for the parsers; a key naming a subcommand (``"fit"``) gives
            that subcommand's parser its own.
        subclass_mode_model: Accept any subclass of ``model_class`` (``--model=pkg.Class``).
        subclass_mode_data: Accept any subclass of ``datamodule_class``.
        args: Arguments to parse instead of ``sys.argv[1:]``: a list of words, or a dict / Namespace.
        run: Add the subcommands and run one; with False only instantiate (no subcommand is parsed).
        auto_configure_optimizers: Add ``--optimizer`` and ``--lr_scheduler``; when given, they
            replace the module's ``configure_optimizers``.
    """

    def __init__(
        self,
        model_class: type[LightningModule] | None = None,
        datamodule_class: type[LightningDataModule] | None = None,
        save_config_callback: type[SaveConfigCallback] | None = SaveConfigCallback,
        save_config_kwargs: dict[str, Any] | None = None,
        trainer_class: type[Trainer] = Trainer,
        trainer_defaults: dict[str, Any] | None = None,
        seed_everything_default: bool | int = True,
        parser_kwargs: dict[str, Any] | None = None,
        subclass_mode_model: bool = False,
        subclass_mode_data: bool = False,
        args: ArgsType = None,
        run: bool = True,
        auto_configure_optimizers: bool = True,
    ) -> None:
        self.save_config_callback = save_config_callback
        self.save_config_kwargs = dict(save_config_kwargs or {})
        self.trainer_class = trainer_class
        self.trainer_defaults = dict(trainer_defaults or {})
        self.seed_everything_default = seed_everything_default
        self.parser_kwargs = dict(parser_kwargs or {})
        self.auto_configure_optimizers = auto_configure_optimizers
        self.model_class = model_class
        self.datamodule_class = datamodule_class
        # No class given means any subclass, chosen on the command line or in the config.
        self._model_class: type[LightningModule] = model_class or LightningModule
        self._datamodule_class: type[LightningDataModule] = datamodule_class or LightningDataModule
        self.subclass_mode_model = model_class is None or subclass_mode_model
        self.subclass_mode_data = datamodule_class is None or subclass_mode_data

        names = self.subcommands()
        main_kwargs = {k: v for k, v in self.parser_kwargs.items() if k not in names}
        sub_kwargs = {k: v for k, v in self.parser_kwargs.items() if k in names}
        self._subcommand_parsers: dict[str, LightningArgumentParser] = {}
        self._subcommand_method_arguments: dict[str, list[str]] = {}
        self.parser = self._build_parser(run, main_kwargs, sub_kwargs)
        self.config: Namespace = self._parse(args)
        self.subcommand: str | None = self.config["subcommand"] if run else None
        self._apply_checkpoint_hyperparameters()
        self._set_seed()
        self.before_instantiate_classes()
        self.instantiate_classes()
        self.after_instantiate_classes()
        if self.subcommand is not None:
            self._run_subcommand(self.subcommand)

    # ------------------------------------------------------------------ parser

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """The subcommands, each with the Trainer-method parameters the CLI fills in itself."""
        return {
            "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
            "validate": {"model", "dataloaders", "datamodule"},
            "test": {"model", "dataloaders", "datamodule"},
            "predict": {"model", "dataloaders", "datamodule"},
        }

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """A parser with ``--config`` (which also brings ``--print_config``)."""
        kwargs.setdefault("dump_header", [f"fulmen=={__version__}"])
        parser = LightningArgumentParser(**kwargs)
        parser.add_argument("-c", "--config", action=ActionConfigFile, help="A YAML or JSON config file (may be repeated).")
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Override to add arguments or links to every parser."""

    def _build_parser(self, run: bool, main_kwargs: dict[str, Any], sub_kwargs: dict[str, Any]) -> LightningArgumentParser:
        parser = self.init_parser(**main_kwargs)
        if not run:
            self._add_arguments(parser)
            return parser
        subcommands = parser.add_subcommands()
        for name, skip in self.subcommands().items():
            method = getattr(self.trainer_class, name)
            summary = (inspect.getdoc(method) or "").split("\n", 1)[0] or None
            kwargs = dict(sub_kwargs.get(name, {}))
            kwargs.setdefault("description", summary)
            subparser = self.init_parser(**kwargs)
            self._add_arguments(subparser)
            added: list[str] = subparser.add_method_arguments(self.trainer_class, name, skip=set(skip))
            self._subcommand_method_arguments[name] = added
            self._subcommand_parsers[name] = subparser
            subcommands.add_subcommand(name, subparser, help=summary)
        return parser

    def _add_arguments(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--seed_everything",
            type=bool | int,
            default=self.seed_everything_default,
            help="An int seeds every RNG with it before the classes are built; true picks the seed "
            "(PL_GLOBAL_SEED, else 0); false does not seed.",
        )
        parser.add_trainer_args(self.trainer_class)
        defaults = {f"trainer.{k}": v for k, v in self.trainer_defaults.items() if k != "callbacks"}
        if defaults:
            parser.set_defaults(defaults)
        parser.add_lightning_class_args(self._model_class, "model", subclass_mode=self.subclass_mode_model)
        # Without a datamodule class the data is optional: the module's own *_dataloader hooks may serve.
        parser.add_lightning_class_args(
            self._datamodule_class, "data", subclass_mode=self.subclass_mode_data, required=self.datamodule_class is not None
        )
        self.add_arguments_to_parser(parser)
        if self.auto_configure_optimizers:
            if not parser.optimizer_keys:
                parser.add_optimizer_args()
            if not parser.lr_scheduler_keys:
                parser.add_lr_scheduler_args()

    def _parse(self, args: ArgsType) -> Namespace:
        if isinstance(args, (Mapping, Namespace)):
            parsed: Namespace = self.parser.parse_object(dict(args) if isinstance(args, Mapping) else args)
        else:
            parsed = self.parser.parse_args(None if args is None else list(args))
        return parsed

    def _apply_checkpoint_hyperparameters(self) -> None:
        """With ``--ckpt_path``, build the model with the hyperparameters saved in the checkpoint (as
        Lightning does), so that ``test --ckpt_path`` needs no repeat of ``fit``'s ``--model.*``."""
        if self.subcommand is None or self.subclass_mode_model:
            return
        ckpt_path = self.config[self.subcommand].get("ckpt_path")
        if not ckpt_path or not os.path.isfile(ckpt_path):
            return  # "best"/"last" and missing files are the Trainer's to resolve or report
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
        if not saved:
            return
        self.config = self.parser.parse_object({self.subcommand: {"model": dict(saved)}}, self.config)

    def _parser(self, subcommand: str | None) -> LightningArgumentParser:
        return self.parser if subcommand is None else self._subcommand_parsers[subcommand]

    def _get(self, config: Namespace, key: str, default: Any = None) -> Any:
        """``key`` in the config of the chosen subcommand (or of the whole parser without one)."""
        branch = config.get(self.subcommand, config) if self.subcommand is not None else config
        return branch.get(key, default)

    # ------------------------------------------------------------------ instantiation

    def _set_seed(self) -> None:
        seed = self._get(self.config, "seed_everything")
        if seed is False or seed is None:
            return
        used = seed_everything(None if seed is True else int(seed), workers=True)
        # The saved config records the seed actually used, so the run can be repeated from it.
        branch = self.config[self.subcommand] if self.subcommand is not None else self.config
        branch["seed_everything"] = used

    def before_instantiate_classes(self) -> None:
        """Override to run code before the classes are built."""

    def after_instantiate_classes(self) -> None:
        """Override to run code after the classes are built."""

    def instantiate_classes(self) -> None:
        """Build the datamodule, the module (with the CLI's optimizer, when given) and the Trainer."""
        parser = self._parser(self.subcommand)
        # jsonargparse renamed instantiate_classes to instantiate in 4.49; use what this version has.
        instantiate: Callable[[Namespace], Namespace] = getattr(self.parser, "instantiate", None) or self.parser.instantiate_classes
        self.config_init: Namespace = instantiate(self.config)
        self.datamodule: LightningDataModule | None = self._get(self.config_init, "data")
        self.model: LightningModule = self._get(self.config_init, "model")
        self._configure_optimizers_from_config(parser)
        self.trainer: Trainer = self.instantiate_trainer()

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Build the Trainer from ``--trainer.*``, adding the callbacks of ``trainer_defaults``, of
        callback argument groups, and the SaveConfigCallback."""
        parser = self._parser(self.subcommand)
        found: Namespace | None = self._get(self.config_init, "trainer")
        # as_dict turns nested Namespaces into dicts but keeps instantiated objects as they are.
        settings: dict[str, Any] = {**(found.as_dict() if found is not None else {}), **kwargs}
        if "callbacks" in inspect.signature(self.trainer_class.__init__).parameters:
            given = settings.get("callbacks")
            callbacks: list[Any] = [] if given is None else list(given) if isinstance(given, list) else [given]
            callbacks += [self._get(self.config_init, key) for key in parser.callback_keys]
            extra = self.trainer_defaults.get("callbacks", [])
            callbacks += list(extra) if isinstance(extra, (list, tuple)) else [extra]
            if self.save_config_callback is not None and not settings.get("fast_dev_run", False):
                branch = self.config[self.subcommand] if self.subcommand is not None else self.config
                callbacks.append(self.save_config_callback(parser, branch, **self.save_config_kwargs))
            settings["callbacks"] = callbacks
        return self.trainer_class(**settings)

    @staticmethod
    def configure_optimizers(
        lightning_module: LightningModule, optimizer: Optimizer, lr_scheduler: Any = None
    ) -> Any:
        """What the module's ``configure_optimizers`` returns when ``--optimizer`` is given; override
        to change it."""
        if lr_scheduler is None:
            return optimizer
        if isinstance(lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            monitor = getattr(lr_scheduler, "monitor", None)
            if monitor is None:
                raise ValueError(
                    "--lr_scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau needs the metric to "
                    "watch; use --lr_scheduler=fulmen.cli.ReduceLROnPlateau --lr_scheduler.monitor=val_loss"
                )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr_scheduler, "monitor": monitor}}
        return [optimizer], [lr_scheduler]

    def _configure_optimizers_from_config(self, parser: LightningArgumentParser) -> None:
        if not self.auto_configure_optimizers or not parser.optimizer_keys:
            return
        if len(parser.optimizer_keys) > 1 or len(parser.lr_scheduler_keys) > 1:
            raise ValueError(
                f"auto_configure_optimizers handles one optimizer and one lr scheduler, but the parser "
                f"has {list(parser.optimizer_keys) + list(parser.lr_scheduler_keys)}; implement "
                "configure_optimizers in the module and pass auto_configure_optimizers=False"
            )
        optimizer_spec = self._get(self.config_init, next(iter(parser.optimizer_keys)))
        if not optimizer_spec:
            return
        scheduler_spec = (
            self._get(self.config_init, next(iter(parser.lr_scheduler_keys))) if parser.lr_scheduler_keys else None
        )
        model = self.model
        if type(model).configure_optimizers is not LightningModule.configure_optimizers:
            warnings.warn(
                f"{type(model).__qualname__}.configure_optimizers is replaced by the --optimizer given "
                f"to {type(self).__qualname__}",
                stacklevel=2,
            )
        chosen = self.configure_optimizers

        def configure_optimizers(module: LightningModule) -> Any:
            # Built when the Trainer asks, after configure_model, so that parameters it creates count.
            optimizer = _instantiate(optimizer_spec, module.parameters())
            scheduler = _instantiate(scheduler_spec, optimizer) if scheduler_spec else None
            return chosen(module, optimizer, scheduler)

        # An instance attribute: the class (and other instances of it) keep their own method.
        model.configure_optimizers = MethodType(configure_optimizers, model)  # type: ignore[method-assign]  # the CLI's optimizer replaces the module's on purpose

    # ------------------------------------------------------------------ running

    def _run_subcommand(self, subcommand: str) -> None:
        before = getattr(self, f"before_{subcommand}", None)
        if callable(before):
            before()
        method = getattr(self, subcommand, getattr(self.trainer, subcommand))
        branch = self.config_init[subcommand]
        kwargs = {k: branch[k] for k in self._subcommand_method_arguments[subcommand] if k in branch}
        kwargs["model"] = self.model
        if self.datamodule is not None:
            kwargs["datamodule"] = self.datamodule
        method(**kwargs)
        after = getattr(self, f"after_{subcommand}", None)
        if callable(after):
            after()


def _instantiate(spec: Any, first: Any) -> Any:
    """Build ``{"class_path": ..., "init_args": {...}}`` with ``first`` as the first argument."""
    as_dict: dict[str, Any] = spec.as_dict() if isinstance(spec, Namespace) else dict(spec)
    module_name, _, class_name = as_dict["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(first, **(as_dict.get("init_args") or {}))

