"""Задания курса: класс, ноутбук, от каких классов курса он зависит, что проверяется.

Создан из autograder/course.py командой `python -m autograder.kit` (её запускает
`make release`): не редактируйте вручную.
"""

TASKS = {
    'head': {'cls': 'Head', 'notebook': '01_head', 'depends_on': (), 'dropout': True, 'causal': True, 'language_model': False},
    'multihead': {'cls': 'MultiHeadAttention', 'notebook': '02_multihead_attention', 'depends_on': ('Head',), 'dropout': True, 'causal': True, 'language_model': False},
    'feedforward': {'cls': 'FeedFoward', 'notebook': '03_feedforward', 'depends_on': (), 'dropout': True, 'causal': False, 'language_model': False},
    'block': {'cls': 'Block', 'notebook': '04_block', 'depends_on': ('MultiHeadAttention', 'FeedFoward'), 'dropout': False, 'causal': True, 'language_model': False},
    'gpt_model': {'cls': 'GPTModel', 'notebook': '05_gpt_model', 'depends_on': ('Block',), 'dropout': False, 'causal': True, 'language_model': True},
}
