"""The options of ``python -m autograder serve``, apart from the service's modules: every
command's parser holds them, and building it must not load the service (its database
tables, its web modules).
"""
import argparse

from ..arguments import positive


def add_arguments(parser):
    parser.add_argument("--out", default="build/service", help="the service's folder (OUT)")
    parser.add_argument("--db-url", default="",
                        help="SQLAlchemy URL of the service's database and the course gradebook, e.g. "
                             "postgresql://user:password@host/db (default: SQLite in OUT)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=positive(int), default=8000)
    parser.add_argument("--public-url", default="",
                        help="the address students use, e.g. https://gpt.example.org (for links)")
    parser.add_argument("--policy", help="TOML file with the course's policy (attempts, deadline, ...)")
    parser.add_argument("--jobs", type=positive(int), default=None, help="submissions graded at once (default: all cores)")
    parser.add_argument("--cell-timeout", type=positive(int), default=60)
    parser.add_argument("--unsafe-no-sandbox", action="store_true")
    parser.add_argument("--regrade", action="store_true",
                        help="queue again every attempt graded by another version of the grader")
    parser.add_argument("--issue-tokens", action="store_true",
                        help="write personal links for --roster to OUT/tokens.csv and exit")
    parser.add_argument("--roster", help="CSV of students (id, first_name, last_name, email; Moodle's exports too)")
    parser.add_argument("--reissue", action="store_true",
                        help="with --issue-tokens: new links for everyone on the roster (old ones stop working)")
    parser.add_argument("--instructor-link", action="store_true",
                        help="with --issue-tokens: a new instructor link (the old one stops working)")
    parser.add_argument("--grader", default="", help=argparse.SUPPRESS)  # MODULE:CLASS, tests only
