"""Network catalog: the built-in Chinese national network and any network from a TOML file.

``load_network("china")`` gives the 8 national hubs, their 10 clusters and eastern demand
cities (``china.toml`` beside this module, every value with its source); any other name is
the path of a network file (format in ``computenet.catalog.netfile``).
"""

from __future__ import annotations

from pathlib import Path

from computenet.errors import NetworkFileError, UnknownNameError
from computenet.model import Network

BUILTIN: dict[str, Path] = {"china": Path(__file__).with_name("china.toml")}
FILE_HINT = "<path to a network .toml file>"


def load_network(
    name: str, *, green_supply: str = "declared", carbon_model: str = "annual"
) -> Network:
    """The built-in network ``name`` (``"china"``) or the network in the TOML file ``name``.

    ``carbon_model`` (``computenet.signals.modelled.CARBON_MODELS``): ``annual`` keeps each
    grid's stated factor; ``hourly`` gives mainland provinces the modelled hourly series.
    ``green_supply`` (``computenet.signals.green.GREEN_MODES``): which declared direct green
    supply is mixed into the price and carbon the engine plans with (``declared``: all but
    policy targets; ``targets``: those too; ``off``: the grid alone).

    Raises ``UnknownNameError`` listing the built-ins when ``name`` is neither, and
    ``NetworkFileError`` (file, place, fix) when the file is malformed.
    """
    from computenet.signals.green import apply_green_supply, check_mode
    from computenet.signals.modelled import apply_carbon_model, check_carbon_model

    check_mode(green_supply)
    check_carbon_model(carbon_model)
    net = _build(name)
    return apply_green_supply(apply_carbon_model(net, carbon_model), green_supply)


def _build(name: str) -> Network:
    from computenet.catalog.netfile import build

    if name in BUILTIN:
        return build(BUILTIN[name], builtin_name=name)
    path = Path(name).expanduser()
    if path.is_file():
        return build(path)
    if path.is_dir():
        raise NetworkFileError(
            "is a directory, not a network file", source=name, fix="give the path of a .toml file"
        )
    raise UnknownNameError("network", name, [*BUILTIN, FILE_HINT])


__all__ = ["BUILTIN", "load_network"]
