"""The notebooks execute end to end (nbclient, one kernel each, a time limit per notebook) and
their own assertions hold (e.g. the likelihood notebook's agreement with the exact density)."""
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIME_LIMIT_S = 900


def test_notebooks_are_stored_without_outputs():
  assert NOTEBOOKS
  for path in NOTEBOOKS:
    for cell in nbformat.read(path, as_version=4).cells:
      assert not cell.get("outputs") and not cell.get("execution_count"), path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
  notebook = nbformat.read(path, as_version=4)
  NotebookClient(notebook, timeout=TIME_LIMIT_S, kernel_name="python3",
                 resources={"metadata": {"path": str(ROOT)}}).execute()
