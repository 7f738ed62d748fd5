"""What the paper reports, as data, so the report can set our numbers beside it.

Source: the paper's "Training and building the model" and "Results" sections ("Coloring Black and
White Images using Keras", St. Clair College). The paper gives no table, only these statements;
nothing here is a number the paper does not print. Its "rmse" optimizer is RMSprop.
"""

from __future__ import annotations

from colorize.choices import OPTIMIZER_ALIASES, optimizer_display_name

__all__ = ["OPTIMIZER_ALIASES", "optimizer_name", "summary_lines"]

# "Adamax has the highest validation accuracy and RMSE had the lowest validation accuracy.
#  The difference between both was nearly 5%."
OPTIMIZER_HIGHEST = "adamax"
OPTIMIZER_LOWEST = "rmsprop"
OPTIMIZER_GAP_POINTS = 5.0  # validation-accuracy points between Adamax and RMSprop
OPTIMIZER_FINDINGS = {
    "adamax": "highest val. accuracy",
    "adam": "in between (implied)",
    "rmsprop": "lowest val. accuracy (~5 pts below Adamax)",
}

# "After training our model with 500 Epochs we got a validation accuracy of 76.94% and train
#  accuracy of 90.95%."
FINAL_EPOCHS = 500
FINAL_VAL_ACCURACY = 76.94  # percent
FINAL_TRAIN_ACCURACY = 90.95  # percent

# "At epochs = 100, the model did poorly i.e. it was underfitted ... 500 epochs ... the validation
#  loss was lesser ... 600 and 1000 ... the validation loss increased suddenly and did not
#  decrease. So, we recommend keeping the number of epochs less than 600."
EPOCH_BUDGETS = (100, 500, 600, 1000)
EPOCH_FINDINGS = {
    100: "underfit",
    500: "best (lowest val. loss)",
    600: "val. loss rose",
    1000: "val. loss rose",
}

# "Kernel_size: 3,5,7 - Padding: 'same', 'valid' - Strides: 1,2 ... changing optimizer and epochs
#  had a huge change as compared to other parameters."
ARCHITECTURE_FINDING = (
    "The paper varied kernel size (3, 5, 7), padding (same, valid) and strides (1, 2) and found "
    "they mattered much less than the optimizer and the number of epochs; it gives no numbers."
)


def optimizer_name(name: str) -> str:
    """Display name of an optimizer ("adamax" -> "Adamax"); unknown names are returned as-is."""
    return optimizer_display_name(name)


def summary_lines() -> list[str]:
    """The paper's findings in plain sentences, for the report."""
    return [
        f"Optimizers: Adamax had the highest validation accuracy and RMSprop ('rmse') the lowest, "
        f"about {OPTIMIZER_GAP_POINTS:.0f} points apart.",
        f"Final model after {FINAL_EPOCHS} epochs: {FINAL_VAL_ACCURACY:.2f}% validation and "
        f"{FINAL_TRAIN_ACCURACY:.2f}% training accuracy.",
        "Epochs: 100 underfit; 500 gave the lowest validation loss; at 600 and 1000 the "
        "validation loss rose and did not come back down (it recommends fewer than 600).",
        "Dataset: about 305 landscape photos at 256x256.",
    ]
