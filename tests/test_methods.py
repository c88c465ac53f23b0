"""The saliency-method registry: a method added there reaches faithfulness, the explorer and the CLI unedited."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from densenet_interp.explain import methods


def inverted_cam(explainer, explanation, *, seed: int = 0) -> np.ndarray:
    """A dummy method: the CAM upside down (evidence against "abnormal")."""
    return -explanation.cam


def test_a_registered_method_reaches_faithfulness_the_explorer_and_the_cli(
    monkeypatch, tiny_model, tmp_path, capsys
):
    from densenet_interp.app.widgets import Explorer
    from densenet_interp.cli import main
    from densenet_interp.evaluate import faithfulness

    monkeypatch.setitem(methods.METHODS, "inverted", inverted_cam)  # the one registry line
    model = tiny_model(64)
    rng = np.random.default_rng(0)
    images_u8 = rng.integers(0, 256, (2, 64, 64), dtype=np.uint8)

    # faithfulness evaluates every registered method
    images = pd.DataFrame({"path": ["a", "b"], "patient": ["p", "q"], "label": [1, 1]})
    per_image = faithfulness.faithfulness_per_image(model, images_u8, images, model_set="tiny", steps=2)
    assert list(pd.unique(per_image["method"])) == [*methods.METHODS]
    inverted = per_image[per_image["method"] == "inverted"]
    assert len(inverted) == 2 and np.allclose(inverted["rank_correlation_with_cam"], -1.0)
    table = faithfulness.faithfulness_table(per_image, n_boot=20)
    assert list(table["method"])[-1] == "inverted"

    # the explorer's map dropdown offers it, and the picture shows it
    explorer = Explorer({"tiny": model}, {"noise": images_u8[0]})
    assert "inverted" in explorer.method_control.options
    cam_picture = explorer.png
    explorer.set(method="inverted")
    assert explorer.state()["method"] == "inverted" and explorer.png != cam_picture

    # the CLI's --method offers it, and the case figure shows it
    model_file = tmp_path / "model.keras"
    model.save(model_file)
    image = tmp_path / "scan.png"
    Image.fromarray(images_u8[1]).save(image)
    out = tmp_path / "out"
    args = ["explain", str(image), "--model", str(model_file), "--out", str(out), "--save-arrays"]
    assert main([*args, "--method", "inverted"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    with np.load(out / "scan.npz", allow_pickle=False) as arrays:
        assert str(arrays["method"]) == "inverted"
        np.testing.assert_allclose(arrays["saliency"], -arrays["cam"])


def test_titles_fall_back_to_the_registry_name(monkeypatch):
    monkeypatch.setitem(methods.METHODS, "inverted", inverted_cam)
    assert methods.title("gradcam++") == "Grad-CAM++" and methods.title("inverted") == "inverted"
    assert methods.DEFAULT_METHOD in methods.METHODS
