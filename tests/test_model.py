from computenet.errors import InputError, UnknownNameError


def test_input_error_names_source_place_and_fix() -> None:
    err = InputError(
        "pue must be >= 1.0", source="net.toml", where="[sites.x]", fix="set pue = 1.2"
    )
    assert str(err) == "net.toml: [sites.x]: pue must be >= 1.0. Fix: set pue = 1.2"


def test_unknown_name_lists_valid_names_sorted() -> None:
    err = UnknownNameError("policy", "fast", ["greedy", "milp"])
    assert "unknown policy 'fast'" in str(err)
    assert "greedy, milp" in str(err)
