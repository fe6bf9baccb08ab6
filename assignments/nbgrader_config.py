"""nbgrader's configuration for the punchlab course (run nbgrader from this folder).

The notebooks in source/ are generated from the chapters: `make assignments`.
"""

import os

c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = "punchlab"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
