"""Node: which model to train and the main GRPO settings, written to the node's config YAML.

The page edits the same config.yaml the headless node reads, so a change here is exactly what
`rl-swarm node` would do with the file. Values are checked by the config's own pydantic rules,
so the page and the node never disagree on what is valid. Changes apply at the next node start.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from desktop.config import Config, TrainingConfig, field_bounds
from desktop.gui.context import AppContext

from .base import ConfigPage

CUSTOM = "custom"
POOL_CHOICES = [
    ("Automatic (from this computer's hardware)", "auto"),
    ("Tiny (built-in test model, works offline)", "tiny"),
    ("Small: Qwen2.5-Coder-0.5B-Instruct", "small"),
    ("Large: Qwen2.5-Coder-1.5B / DeepSeek-Coder-1.3B", "large"),
    ("Another model from the hub…", CUSTOM),
]
DTYPES = ["float32", "bfloat16", "float16", "auto"]
DEVICES = ["auto", "cpu", "cuda", "mps"]


class NodePage(ConfigPage):
    title = "Node"
    icon_name = "applications-science"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        form = self.add_form()
        self.pool = QComboBox()
        for label, value in POOL_CHOICES:
            self.pool.addItem(label, value)
        self.model_name = QLineEdit()
        self.model_name.setPlaceholderText("e.g. Qwen/Qwen2.5-Coder-0.5B-Instruct or a local folder")
        self.pool.currentIndexChanged.connect(self._pool_changed)
        form.addRow("Model pool", self.pool)
        form.addRow("Hub model", self.model_name)

        # ranges come from the config's own limits, so the page never offers what the node refuses
        self.num_generations = QSpinBox()
        self.num_generations.setRange(*field_bounds(TrainingConfig, "num_generations"))
        self.max_new_tokens = QSpinBox()
        self.max_new_tokens.setRange(*field_bounds(TrainingConfig, "max_new_tokens"))
        self.max_new_tokens.setSingleStep(32)
        # A spin box cannot show 1e-6 usefully; scientific text is what people write anyway.
        self.learning_rate = QLineEdit()
        self.learning_rate.setPlaceholderText("1e-6")
        self.temperature = QDoubleSpinBox()
        self.temperature.setDecimals(2)
        low, high = field_bounds(TrainingConfig, "temperature")  # low is exclusive (gt=0)
        self.temperature.setRange(low + 10 ** -self.temperature.decimals(), high)
        self.temperature.setSingleStep(0.1)
        self.dtype = QComboBox()
        self.dtype.addItems(DTYPES)
        self.device = QComboBox()
        self.device.setEditable(True)  # cuda:1 etc.
        self.device.addItems(DEVICES)
        form.addRow("Completions per prompt", self.num_generations)
        form.addRow("Max new tokens", self.max_new_tokens)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Temperature", self.temperature)
        form.addRow("Precision (dtype)", self.dtype)
        form.addRow("Device", self.device)
        self.add_note("Changes apply the next time the node starts. Larger models need more "
                      "memory: the first-run check tells which pool fits this computer.")
        self.finish()

    def _pool_changed(self) -> None:
        self.model_name.setEnabled(self.pool.currentData() == CUSTOM)

    # ---- values <-> config ----
    def _apply(self, cfg: Config) -> Config:
        """Write the shown values into ``cfg``; raises ValueError/ValidationError on bad input."""
        choice = self.pool.currentData()
        if choice == CUSTOM:
            name = self.model_name.text().strip()
            if not name:
                raise ValueError("Enter a hub model name, or pick a pool.")
            cfg.model.name = name
        else:
            cfg.model.pool = choice
            cfg.model.name = None
        t = cfg.training
        t.num_generations = self.num_generations.value()
        t.max_new_tokens = self.max_new_tokens.value()
        try:
            t.learning_rate = float(self.learning_rate.text().strip())
        except ValueError:
            raise ValueError("The learning rate must be a number such as 1e-6.") from None
        t.temperature = round(self.temperature.value(), 2)
        cfg.model.dtype = self.dtype.currentText()
        cfg.model.device = self.device.currentText().strip()
        return cfg

    def load(self) -> None:
        cfg = self.ctx.load_config()
        value = CUSTOM if cfg.model.name else cfg.model.pool
        self.pool.setCurrentIndex(max(0, self.pool.findData(value)))
        self.model_name.setText(cfg.model.name or "")
        self._pool_changed()
        t = cfg.training
        self.num_generations.setValue(t.num_generations)
        self.max_new_tokens.setValue(t.max_new_tokens)
        self.learning_rate.setText(f"{t.learning_rate:g}")
        self.temperature.setValue(t.temperature)
        self.dtype.setCurrentText(cfg.model.dtype)
        self.device.setCurrentText(cfg.model.device)
