# What a task's class cell needs when it runs alone, without the cells before it (the
# rescue of a task whose earlier step killed the kernel; worker/rescue.py). A notebook cell.
import math
import torch
import torch.nn as nn
from torch.nn import functional as F
