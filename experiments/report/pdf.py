"""The report's PDF, laid out with fpdf2 on A4 landscape pages: headings, paragraphs, tables of
real text (wrapped cells, header rows repeated on every page they continue to, so `pdftotext`
reads them) and figures. DejaVu Sans, which matplotlib ships, covers "±" and "Δ"."""

from __future__ import annotations

from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace

from experiments.report.tables import Table

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT = "DejaVu"
MARGIN = 10  # mm
WIDE_SHARE = 3.0  # a long-text column gets up to this times an even share of the width
CHAR_MM = 0.21  # mm a DejaVu Sans character takes per point of font size, on average
BOLD = 1.2  # how much wider the bold headings are


class ReportPdf(FPDF):
    """A4 landscape pages with a footer line naming the report."""

    def __init__(self, footer: str, title: str):
        super().__init__(orientation="L", format="A4")
        self.footer_text = footer
        self.add_font(FONT, fname=str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, style="B", fname=str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=14)
        self.set_title(title)
        self.set_creator("colorize-studies experiments.report")

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(FONT, size=7)
        self.set_text_color(100)
        self.cell(0, 5, self.footer_text, align="R")
        self.set_text_color(0)

    def title_page(self, text: str) -> None:
        self.add_page()
        self.set_font(FONT, "B", 16)
        self.multi_cell(0, 9, text, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def heading(self, text: str) -> None:
        if self.will_page_break(25):
            self.add_page()
        self.ln(2)
        self.set_font(FONT, "B", 12)
        self.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def paragraphs(self, texts: list[str], size: float = 9.5) -> None:
        self.set_font(FONT, size=size)
        for text in texts:
            self.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
            self.ln(1.5)

    def add_table(self, table: Table, size: float | None = None) -> None:
        """`table` with its title and notes; long-text columns get more room."""
        self.heading(table.title)
        columns = len(table.columns)
        size = size or (9 if columns <= 8 else 7.5 if columns <= 12 else 6.5)
        self.set_font(FONT, size=size)
        lengths = [
            max([len(table.columns[c]) / 2, *(len(str(row[c])) for row in table.rows)], default=1)
            for c in range(columns)
        ]
        even = sum(lengths) / columns
        widths = [
            min(length, even * (WIDE_SHARE if c in table.wide else 1.6)) + 2
            for c, length in enumerate(lengths)
        ]
        # No column narrower than its longest word: a long text beside a short label would
        # otherwise squeeze the label into broken syllables ("Profil e").
        chars = self.epw / (size * CHAR_MM)  # characters a line holds at this size
        words = [
            max([BOLD * len(w) for w in table.columns[c].split()]
                + [len(w) for row in table.rows for w in str(row[c]).split()], default=1)
            for c in range(columns)
        ]  # fmt: skip
        total = sum(widths)
        widths = [max(w * chars / total, word + 2) for w, word in zip(widths, words, strict=True)]
        aligns = ["LEFT" if c in table.wide else "CENTER" for c in range(columns)]
        with self.table(
            col_widths=widths,
            text_align=aligns,
            repeat_headings=1,
            v_align="TOP",
            line_height=size * 0.5,
            headings_style=FontFace(emphasis="BOLD", fill_color=(225, 225, 225)),
            first_row_as_headings=True,
        ) as pdf_table:
            for row in [table.columns, *table.rows]:
                cells = pdf_table.row()
                for value in row:
                    cells.cell(str(value))
        self.ln(2)
        if table.notes:
            self.paragraphs(table.notes, size=9)

    def figure(self, title: str, subtitle: str, path: Path | None, caption: str = "") -> None:
        """A figure (a PNG) on a page of its own, or a line saying it is missing."""
        self.add_page()
        self.set_font(FONT, "B", 13)
        self.multi_cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, size=9)
        self.set_text_color(80)
        if subtitle:
            self.multi_cell(0, 5, subtitle, new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)
        self.ln(2)
        if path is None:
            self.paragraphs([f"{caption or title}: not found in the store."])
            return
        room = self.h - self.get_y() - 20
        self.image(str(path), h=room, keep_aspect_ratio=True, w=self.epw)
        if caption:
            self.paragraphs([caption], size=9)

    def images_row(self, title: str, subtitle: str, items: list[tuple[str, Path | None]]) -> None:
        """Several PNGs side by side with captions (e.g. each group's sample photos)."""
        self.add_page()
        self.set_font(FONT, "B", 13)
        self.multi_cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, size=9)
        self.multi_cell(0, 5, subtitle, new_x="LMARGIN", new_y="NEXT")
        top = self.get_y() + 2
        width = self.epw / max(1, len(items))
        for index, (caption, path) in enumerate(items):
            x = MARGIN + index * width
            self.set_xy(x, top)
            self.multi_cell(width - 2, 4.5, caption, align="C")
            if path is not None:
                self.image(
                    str(path),
                    x=x,
                    y=top + 14,
                    w=width - 4,
                    h=self.h - top - 34,
                    keep_aspect_ratio=True,
                )
