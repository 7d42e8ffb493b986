"""Architecture rules that import-linter cannot express for packages that do not exist yet."""

from __future__ import annotations

import grimp


def test_operator_imports_only_config_from_the_workload() -> None:
    graph = grimp.build_graph("lokistack_operator", "lokistack")
    imported = {
        imported_module
        for module in graph.find_descendants("lokistack_operator") | {"lokistack_operator"}
        for imported_module in graph.find_modules_directly_imported_by(module)
        if imported_module.startswith("lokistack.")
    }
    outside_config = sorted(
        name
        for name in imported
        if not (name == "lokistack.config" or name.startswith("lokistack.config."))
    )
    assert not outside_config, f"the operator may import only lokistack.config: {outside_config}"
