"""The composed config printed as a tree at a run's start (`extras.print_config`), one branch per top-level key."""

from omegaconf import DictConfig, ListConfig, OmegaConf


def config_tree(cfg: DictConfig):
    """A rich Tree of `cfg`, interpolations resolved: a group's settings as YAML under its name."""
    from rich.text import Text
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    for key, value in cfg.items():
        if isinstance(value, DictConfig | ListConfig):
            tree.add(str(key)).add(Text(OmegaConf.to_yaml(value, resolve=True).rstrip()))
        else:
            tree.add(f"{key}: {value}")
    return tree


def print_config_tree(cfg: DictConfig):
    from rich import print as rich_print

    rich_print(config_tree(cfg))
