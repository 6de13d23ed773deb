"""The notebooks execute end to end (nbclient, one kernel each, a time limit per notebook), their
own assertions hold (e.g. the likelihood notebook's agreement with the exact density), every cell
that draws a figure shows it, and nothing they put in the temporary directory is left behind."""
import os
import pathlib
import re

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIME_LIMIT_S = 900
# A figure cell: a code cell that calls matplotlib's pyplot (`plt.`) or draws on axes (`.imshow(`,
# `.plot(`, `.scatter(`). The inline backend shows its figure as an image/png output at the end.
FIGURE_CALL = re.compile(r"\bplt\.|\.(imshow|plot|scatter)\(")


def figure_cells(notebook) -> list[int]:
  return [i for i, cell in enumerate(notebook.cells)
          if cell.cell_type == "code" and FIGURE_CALL.search(cell.source)]


def cells_without_image(notebook) -> list[int]:
  """Figure cells none of whose outputs holds an image/png."""
  return [i for i in figure_cells(notebook)
          if not any("image/png" in output.get("data", {}) for output in notebook.cells[i].outputs)]


def test_notebooks_are_stored_without_outputs():
  assert NOTEBOOKS
  for path in NOTEBOOKS:
    for cell in nbformat.read(path, as_version=4).cells:
      assert not cell.get("outputs") and not cell.get("execution_count"), path.name


def test_every_notebook_has_figure_cells_and_a_missing_image_is_caught():
  for path in NOTEBOOKS:
    assert figure_cells(nbformat.read(path, as_version=4)), path.name
  notebook = nbformat.v4.new_notebook(cells=[
      nbformat.v4.new_code_cell("import matplotlib.pyplot as plt"),
      nbformat.v4.new_code_cell("fig, ax = plt.subplots()\nax.plot([0, 1])"),
      nbformat.v4.new_code_cell("ax.imshow(grid)")])
  assert figure_cells(notebook) == [1, 2]
  image = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=",
                                                        "text/plain": "<Figure>"})
  text = nbformat.v4.new_output("execute_result", data={"text/plain": "[<Line2D>]"})
  notebook.cells[1].outputs = [text, image]
  notebook.cells[2].outputs = [text]
  assert cells_without_image(notebook) == [2]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
  notebook = nbformat.read(path, as_version=4)
  scratch = tmp_path / "tmp"  # the kernel's tempfile.gettempdir(): only the notebook writes here
  scratch.mkdir()
  client = NotebookClient(notebook, timeout=TIME_LIMIT_S, kernel_name="python3",
                          resources={"metadata": {"path": str(ROOT)}})
  with client.setup_kernel(env={**os.environ, "TMPDIR": str(scratch)}):
    for index, cell in enumerate(notebook.cells):
      client.execute_cell(cell, index)
    # Checked while the kernel still runs, as in a Jupyter session: the notebook's own last cells
    # clean up, not the interpreter's exit.
    left_behind = sorted(p.name for p in scratch.iterdir())
  assert not left_behind, f"{path.name} left {left_behind} in its temporary directory"
  missing = cells_without_image(notebook)
  assert not missing, (f"{path.name}: figure cells {missing} produced no image/png output:\n"
                       + "\n---\n".join(notebook.cells[i].source for i in missing))
