"""One build step pyproject.toml cannot say: leave the notebooks' .py sources out of the wheel.

pyproject.toml maps notebooks/ to the package ``punchlab.notebooks`` so that
the course's ``*.ipynb`` files ship inside punchlab; setuptools would also
take every ``*.py`` file there as a module, and those are the notebooks'
jupytext-paired sources, for contributors (``make notebooks`` runs them into
the ``.ipynb`` files), not modules of the package.
"""

from setuptools import setup
from setuptools.command.build_py import build_py

NOTEBOOKS_PACKAGE = "punchlab.notebooks"


class BuildPy(build_py):
    """Build the packages as usual, with no Python modules in the notebooks folder."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        if package == NOTEBOOKS_PACKAGE:
            return []
        modules: list[tuple[str, str, str]] = super().find_package_modules(package, package_dir)
        return modules


setup(cmdclass={"build_py": BuildPy})
