"""Ошибки в ноутбуке — по-русски: что не так, в какой строке вашего кода и как исправить.

Первая ячейка каждого ноутбука (через ``gpt_course.start``) ставит этот
обработчик в ядро Jupyter. Любая ошибка в ячейке — упавший тест, падение
вашего forward, сломанный предыдущий шаг — показывается одним русским
сообщением: ошибка (по самопроверке ``gpt_selfcheck``), ваша строка и что
сделать. Ячейка по-прежнему завершается ошибкой (Run All останавливается,
проверка видит её), а исходная ошибка Python не теряется: ``%tb`` в новой
ячейке покажет её полный traceback.

Runs in the student's kernel (any Python 3.10+ IPython); the standard library
only at import time, torch and the self-check only when a failure is explained.
"""
import linecache
import os
import re
import sys
import traceback
import warnings

RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"
TB_HINT = "полный traceback исходной ошибки Python покажет %tb в новой ячейке"
# Set in the grader's kernels: the grader explains failures itself, outside the kernel.
GRADING = os.environ.get("GPT_COURSE_MODE") == "grading"


class CourseError(Exception):
    """An error whose message is already Russian and complete: shown as it is, without a traceback."""

    def lines(self):
        text = str(self)
        first, _, rest = text.partition("\n")
        return [f"{RED}{BOLD}{first}{RESET}"] + ([rest] if rest else [])

    def _render_traceback_(self):   # IPython shows these lines instead of a traceback
        return self.lines()


# ---------------------------------------------------------------- the course

_COURSE = None


def _course():
    """The task tables of the self-check (imports torch): {task, class, notebook, step}."""
    global _COURSE
    if _COURSE is None:
        import gpt_selfcheck as kit
        _COURSE = {"kit": kit, "task_of_class": {cls: task for task, cls in kit.CLASS_OF_TASK.items()}}
    return _COURSE


def step_of(notebook):
    """'01' of '01_head' or '01_head.ipynb'."""
    prefix = os.path.basename(str(notebook)).split("_")[0]
    return prefix if prefix.isdigit() else str(notebook)


def own_task(namespace):
    """The course task whose class this notebook defines itself (not imported), or None."""
    if "gpt_selfcheck" not in sys.modules and "torch" not in sys.modules:
        return None
    try:
        tables = _course()
    except Exception:
        return None
    for cls_name, task in reversed(list(tables["task_of_class"].items())):   # a later step's class first
        cls = namespace.get(cls_name)
        if isinstance(cls, type) and cls.__module__ == "__main__":
            return task
    return None


# ------------------------------------------------------------- where in code

def cell_label(filename, shell=None):
    """'ячейка [7]' for an IPython cell, the export name for a cell import_notebook ran, else None."""
    if ".ipynb, ячейка " in filename:
        return filename
    if shell is None:
        try:
            from IPython import get_ipython
            shell = get_ipython()
        except ImportError:
            shell = None
    names = getattr(getattr(shell, "compile", None), "_filename_map", None) or {}
    if filename in names:
        return f"ячейка [{names[filename]}]"
    if re.search(r"ipykernel_\d+[/\\]\d+\.py$", filename) or filename.startswith("<ipython-input-"):
        return "ячейка"
    return None


def code_line(filename, lineno):
    """The line's code, without a trailing comment."""
    text = linecache.getline(filename, lineno).strip()
    return re.sub(r"\s+#[^'\"]*$", "", text)


def student_frames(tb, shell=None):
    """[(label, lineno, filename, function)] of the traceback's frames in notebook cells, outermost first."""
    found = []
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        label = cell_label(filename, shell)
        if label is not None:
            found.append((label, lineno, filename, frame.f_code.co_name))
    return found


def where_text(label, lineno, filename):
    text = code_line(filename, lineno)
    return f"{label}, строка {lineno}" + (f": {text}" if text else "")


# Mistake key -> the words of the line that does (or should do) that part of forward.
_LINE_OF_MISTAKE = [
    (("n_ctx",), r"n_ctx"),
    (("transpose_all_axes",), r"\.T\b"),
    (("mask",), r"masked_fill|tril|mask"),
    (("scale", "q_k_swapped"), r"transpose|\.mT\b|\.T\b|matmul|einsum|@"),
    (("softmax",), r"softmax"),
    (("value", "weights_not_applied"), r"@\s*v\b|wei\s*@|matmul|bmm|einsum"),
    (("dropout",), r"dropout"),
    (("no_projection",), r"\bcat\b|heads"),
    (("proj",), r"proj"),
    (("heads", "concat", "interleaved"), r"\bcat\b|stack|heads"),
    (("extra_activation",), r"relu|gelu|tanh"),
    (("output_changed",), r"^return\b"),
    (("relu", "linear", "identity"), r"net|relu|return"),
    (("norm", "layernorm"), r"\bln"),
    (("residual_around_blocks",), r"block.*\+|\+.*block"),
    (("residual", "ffwd_first", "parallel"), r"\+|sa\(|ffwd\("),
    (("positional", "positions"), r"position"),
    (("final_layernorm",), r"ln_f|blocks"),
    (("blocks",), r"blocks"),
    (("depend_on_targets",), r"token_embedding_table|targets"),
    (("logits",), r"lm_head|logits"),
    (("loss", "nll", "mse", "reduction"), r"cross_entropy|nll_loss|mse_loss|\.item\(\)"),  # the loss's own line first
    (("loss", "targets", "softmax_before", "nll", "mse", "reduction"), r"cross_entropy|loss|nll|mse"),
]


def forward_line(cls, key, fallback=True):
    """(label, lineno, filename) of the line of ``cls.forward`` that ``key`` concerns, or of ``def forward``
    (None instead when ``fallback`` is False)."""
    function = getattr(cls, "forward", None)
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    filename, first = code.co_filename, code.co_firstlineno
    label = cell_label(filename) or "ячейка с классом"
    lines = linecache.getlines(filename)
    if not lines:
        return label, first, filename
    code_lines, indent, quote = [], None, None
    for number in range(first, len(lines)):   # the lines after `def forward`, while indented deeper
        text = lines[number]
        stripped = text.strip()
        if not stripped:
            continue
        depth = len(text) - len(text.lstrip())
        if indent is None:
            indent = depth
        if depth < indent and quote is None:
            break
        if quote is not None:               # inside the docstring
            if quote in stripped:
                quote = None
            continue
        if stripped.startswith(('"""', "'''")):
            mark = stripped[:3]
            if stripped.count(mark) == 1:
                quote = mark
            continue
        if not stripped.startswith("#"):
            code_lines.append((number + 1, stripped))
    for words, pattern in _LINE_OF_MISTAKE:
        if any(w in key for w in words):
            matches = [n for n, text in code_lines if re.search(pattern, text)]
            if matches:
                return label, matches[0], filename
    return (label, first, filename) if fallback else None


# ------------------------------------------------------------ Python's words

# Messages whose Russian depends on the line that raised them: matched on "message; строка N: code",
# as the grader's probe reports an error and as ``in_russian`` builds it from the traceback.
_LINE_TRANSLATIONS = [
    (r"'(?:float|int)' object is not callable(?=; строка \d+: .*\bself\.dropout\s*\()",
     "self.dropout здесь — число из конфигурации (вероятность dropout), а не слой nn.Dropout: вызвать его "
     "нельзя; своего слоя dropout у этого класса нет (он есть в Head, MultiHeadAttention и FeedFoward)"),
]

_MESSAGE_TRANSLATIONS = _LINE_TRANSLATIONS + [   # Python's and torch's messages
    (r"The size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton dimension (\d+)",
     r"размеры тензоров не совпадают: \1 и \2 по оси \3"),
    (r"Expected target size \[(.*?)\], got \[(.*?)\]",
     r"логиты с тремя осями: тогда F.cross_entropy ждёт цели формы [\1], а получил [\2]; передайте "
     r"логиты формы (B*T, C) и цели формы (B*T)"),
    (r"mat1 and mat2 shapes cannot be multiplied \((\S+) and (\S+)\)",
     r"матрицы форм \1 и \2 нельзя перемножить"),
    (r"Expected size for first two dimensions of batch2 tensor to be: (\[.*?\]) but got: (\[.*?\])",
     r"формы тензоров в матричном умножении не согласованы (ожидалось \1, получено \2)"),
    (r"shape '(\[.*?\])' is invalid for input of size (\d+)",
     r"нельзя придать форму \1 тензору из \2 элементов"),
    (r"Expected input batch_size \((\d+)\) to match target batch_size \((\d+)\)\.?",
     r"у логитов \1 строк, а у целей \2: разверните цели так же, как логиты (targets.view(B * T))"),
    (r"0D or 1D target tensor expected, multi-target not supported",
     "цели для F.cross_entropy должны быть одномерными, формы (B*T): targets.view(B * T)"),
    (r"Given normalized_shape=\[(\d+)\], expected input with shape \[\*, \d+\], but got input of size ?(\[.*?\])",
     r"LayerNorm ждёт последнюю ось размера \1, а получил тензор формы \2"),
    (r"Module \[(\w+)\] is missing the required \"forward\" function",
     r"\1 нельзя вызвать: у него нет метода forward (nn.ModuleList — это список модулей: вызовите "
     r"каждый, например [h(x) for h in self.heads])"),
    (r"\"(\w+)\" not implemented for '(\w+)'",
     r"операция \1 не определена для тензоров типа \2: нужен вещественный тензор (.float())"),
    (r"Tensors must have same number of dimensions: got (\d+) and (\d+)",
     r"у склеиваемых тензоров разное число осей: \1 и \2"),
    (r"Sizes of tensors must match except in dimension (\d+)\. Expected size (\d+) but got size (\d+) "
     r"for tensor number (\d+) in the list\.?",
     r"torch.cat: размеры тензоров должны совпадать по всем осям, кроме оси \1, а у тензора номер \4 "
     r"размер \3 вместо \2"),
    (r"expected m1 and m2 to have the same dtype, but got: (\w+) != (\w+)",
     r"у перемножаемых матриц разные типы данных: \1 и \2"),
    (r"Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; "
     r"but got (\S+) instead(?: \(while checking arguments for embedding\))?",
     r"nn.Embedding ждёт целые номера (torch.long), а получил \1"),
    (r"index out of range in self",
     "номер за пределами таблицы nn.Embedding: номер токена не меньше vocab_size или позиции не меньше n_ctx"),
    (r"masked_fill_? only supports boolean masks, but got mask with dtype (\w+)",
     r"маска для masked_fill должна быть логической (например, self.tril[:T, :T] == 0), а получен тензор "
     r"типа \1"),
    (r"Boolean value of Tensor with more than one value is ambiguous",
     "тензор из нескольких значений нельзя проверять в if, and или or: сравнивайте поэлементно"),
    (r"(\w+)\(\): argument '(\w+)' \(position \d+\) must be tuple of Tensors, not (\w+)",
     r"\1(): аргумент \2 должен быть списком тензоров, а передан \3 (например, [h(x) for h in self.heads])"),
    (r"(\w+)\(\): argument '(\w+)' \(position \d+\) must be Tensor, not (\w+)",
     r"\1(): аргумент \2 должен быть тензором, а передан \3"),
    (r"view size is not compatible with input tensor's size and stride[^.]*\.(?: Use \.reshape\(\.\.\.\) instead\.)?",
     "view нельзя применить к этому тензору: после transpose он лежит в памяти не подряд; используйте "
     ".reshape(...) или .contiguous().view(...)"),
    (r"one of the variables needed for gradient computation has been modified by an inplace operation"
     r"(?:: \[.*?instead\.)?(?: Hint: [^;]*)?",
     "тензор, нужный для градиентов, изменён на месте (операция с _ в конце имени или +=): используйте "
     "версию без изменения на месте"),
    (r"element 0 of tensors does not require grad and does not have a grad_fn",
     "у потерь нет градиента: они вычислены без связи с параметрами (нет ли .detach(), .item() или "
     "torch.no_grad()?)"),
    (r"Expected all tensors to be on the same device[^!;\n]*!?(?: \(when checking argument[^)]*\))?",
     "тензоры на разных устройствах (CPU и GPU): создавайте новые тензоры на устройстве входа, например "
     "torch.arange(T, device=idx.device)"),
    (r"mat1 and mat2 must have the same dtype, but got (\w+) and (\w+)",
     r"у перемножаемых матриц разные типы данных: \1 и \2 (целые номера токенов вместо эмбеддингов?)"),
    (r"expected target dtype to be Long or Byte, but got (\w+)",
     r"цели (targets) для F.cross_entropy — номера токенов типа torch.long, а получен тип \1: "
     r"не превращайте targets в float"),
    (r"Target (-?\d+) is out of bounds\.?",
     r"цель \1 вне словаря: номера в targets должны быть от 0 до vocab_size - 1"),
    (r"stack expects each tensor to be equal size, but got (\[.*?\]) at entry (\d+) and (\[.*?\]) at entry (\d+)",
     r"torch.stack: тензоры должны быть одной формы, а у тензора номер \2 форма \1, у тензора номер \4 — \3"),
    (r"(\w+): input tensor must have at least 2 dimensions", r"\1: нужен тензор хотя бы с двумя осями"),
    (r"both arguments to matmul need to be at least 1D, but they are (\w+) and (\w+)",
     r"в умножении @ оба множителя должны быть тензорами хотя бы с одной осью, а у них \1 и \2 "
     r"(число вместо тензора?)"),
    (r"Trying to backward through the graph a second time[^;\n]*",
     "backward вызван второй раз по тому же графу: вычисляйте потери заново (model(xb, yb)) перед "
     "каждым loss.backward()"),
    (r"Can't call numpy\(\) on Tensor that requires grad\.[^;\n]*",
     "numpy() нельзя вызвать у тензора с градиентом: в forward оставайтесь в torch; для печати или "
     "графика — tensor.detach().numpy()"),
    (r"a leaf Variable that requires grad is being used in an in-place operation\.?",
     "параметр модели изменён на месте (операция с _ в конце имени или +=): не меняйте веса в forward, "
     "запишите результат в новую переменную"),
    (r"probability tensor contains either `inf`, `nan` or element < 0",
     "вероятности для torch.multinomial содержат inf, NaN или отрицательные числа: логиты модели "
     "содержат NaN или inf (проверьте маску и softmax в Head)"),
    (r"result type (\w+) can't be cast to the desired output type (\w+)",
     r"результат типа \1 нельзя записать на месте в тензор типа \2: используйте операцию без _ в конце "
     r"имени или сначала .float()"),
    (r"only one dimension can be inferred", "в view или reshape -1 можно указать только для одной оси"),
    (r"(?:\[enforce fail at [^\]]*\] err == 0\. )?DefaultCPUAllocator: can't allocate memory: you tried to "
     r"allocate (\d+) bytes\.?(?: Error code \d+ \([^)]*\))?",
     r"не хватает памяти: код пытается создать тензор в \1 байт (слишком большие размеры?)"),
    (r"can only concatenate str \(not \"(\w+)\"\) to str",
     r"строку можно сложить только со строкой, а не с \1: используйте f-строку или str(...)"),
    (r"(\w+)\(\): argument '(\w+)' \(position \d+\) must be ([\w.]+), not ([\w.]+)",
     r"\1(): аргумент \2 должен быть типа \3, а не \4"),
    (r"can't multiply sequence by non-int of type '(\w+)'",
     r"кортеж или список нельзя умножить на \1: умножайте число или тензор (x.shape — кортеж, а не число)"),
    (r"([\w.]+)\(\) got an unexpected keyword argument '(\w+)'",
     r"\1() не принимает аргумент \2: проверьте, как он называется"),
    (r"object of type '(\w+)' has no len\(\)", r"у объекта типа \1 нет длины (len)"),
    (r"unhashable type: '(\w+)'", r"объект типа \1 нельзя сделать ключом словаря или элементом множества"),
    (r"invalid literal for int\(\) with base 10: (.*)", r"строку \1 нельзя превратить в целое число"),
    (r"len\(\) of a 0-d tensor", "у тензора без осей (одного числа) нет длины: возьмите его значение .item()"),
    (r"iteration over a 0-d tensor", "тензор без осей (одно число) нельзя перебрать в цикле"),
    (r"a Tensor with (\d+) elements cannot be converted to Scalar",
     r".item() работает только у тензора из одного элемента, а в этом их \1"),
    (r"(\w+)\(\) received an invalid combination of arguments - got \(([^)]*)\)[^;\n]*",
     r"\1(): такие аргументы не подходят (получено: \2)"),
    (r"(\S+) is not a Module subclass",
     r"\1 — не слой nn.Module: в nn.ModuleList и nn.Sequential кладут слои (nn.Linear, nn.ReLU, ...)"),
    (r"torch\.cat\(\): expected a non-empty list of Tensors", "torch.cat получил пустой список: в нём нет ни одного тензора"),
    (r"expected Tensor as element (\d+) in argument \d+, but got (\w+)",
     r"в списке для torch.cat или torch.stack элемент номер \1 — не тензор, а \2: передайте тензоры "
     r"(для голов — их выходы, [h(x) for h in self.heads], а не сами модули)"),
    (r"permute\(\w*\): number of dimensions in the tensor input does not match the length of the desired "
     r"ordering of dimensions i\.e\. input\.dim\(\) = (\d+) is not equal to len\(dims\) = (\d+)",
     r"permute: у тензора осей \1, а в новом порядке осей названо \2"),
    (r"\[Errno 2\] No such file or directory: '([^']*)'", r"файл «\1» не найден"),
    (r"Torch not compiled with CUDA enabled|Found no NVIDIA driver on your system[^;\n]*|No CUDA GPUs are available",
     "GPU (CUDA) здесь нет: не пишите в forward .cuda() и device='cuda', создавайте новые тензоры на "
     "устройстве входа, например torch.arange(T, device=idx.device)"),
    (r"maximum recursion depth exceeded[^;\n]*",
     "бесконечная рекурсия: функция вызывает сама себя без конца (например, self(x) или self.forward(x) "
     "внутри forward)"),
    (r"The expanded size of the tensor \((\d+)\) must match the existing size \((\d+)\) at non-singleton "
     r"dimension (\d+)\.?(?:\s+Target sizes: \[.*?\]\.\s+Tensor sizes: \[.*?\])?",
     r"expand: размер \1 не совпадает с имеющимся \2 по оси \3"),
    (r"Dimension out of range \(expected to be in range of \[(-?\d+), (-?\d+)\], but got (-?\d+)\)",
     r"оси с номером \3 у тензора нет: допустимы номера от \1 до \2"),
    (r"Dimension out of range", "номер оси больше, чем осей у тензора"),
    (r"'([\w.]+)' object is not callable",
     r"объект типа \1 нельзя вызвать как функцию: лишние скобки или имя занято переменной?"),
    (r"index (\S+) is out of bounds", r"индекс \1 за пределами тензора"),
    (r"name '(\w+)' is not defined",
     r"имя «\1» не определено: выполните ячейку, где оно задаётся, или проверьте опечатку"),
    (r"(?:cannot access local variable '(\w+)' where it is not associated with a value"
     r"|local variable '(\w+)' referenced before assignment)",
     r"переменной «\1\2» не присвоено значение на этом пути: присвойте его в каждой ветке if/else "
     r"(например, loss = None, когда targets не переданы)"),
    (r"'(\w+)' object has no attribute '(\w+)'", r"у объекта \1 нет атрибута «\2»"),
    (r"module '([\w.]+)' has no attribute '(\w+)'", r"в модуле \1 нет «\2»"),
    (r"'NoneType' object is not subscriptable", "получено None вместо значения: не забыт ли return?"),
    (r"'builtin_function_or_method' object is not subscriptable",
     "метод нельзя индексировать квадратными скобками: сначала вызовите его (x.size()[0] или x.shape[0])"),
    (r"'([\w.]+)' object is not subscriptable", r"объект типа \1 нельзя индексировать квадратными скобками"),
    (r"list indices must be integers or slices, not (\w+)",
     r"индекс списка — целое число или срез, а не \1: список не тензор, склейте его (torch.cat или torch.stack)"),
    (r"(\w+)\(\) got multiple values for argument '(\w+)'", r"\1(): аргумент \2 передан дважды"),
    (r"unsupported operand type\(s\) for (.+?): '([\w.]+)' and '([\w.]+)'",
     r"операцию \1 нельзя применить к \2 и \3"),
    (r"cannot unpack non-iterable NoneType object", "получено None вместо пары значений: не забыт ли return?"),
    (r"'NoneType' object has no attribute '(\w+)'", r"получено None вместо тензора (не забыт ли return?)"),
    (r"cannot unpack non-iterable (?:builtin_function_or_method|method) object",
     "метод нельзя распаковать: вызовите его со скобками (x.size()) или возьмите форму x.shape"),
    (r"cannot unpack non-iterable ([\w.]+) object", r"значение типа \1 нельзя распаковать в несколько переменных"),
    (r"too many values to unpack \(expected (\d+)\)", r"значений больше, чем переменных слева от = (их \1)"),
    (r"not enough values to unpack \(expected (\d+), got (\d+)\)",
     r"значений меньше, чем переменных слева от =: \2 вместо \1"),
    (r"too many values to unpack", "значений больше, чем переменных слева от ="),
    (r"not enough values to unpack", "значений меньше, чем переменных слева от ="),
    (r"1D tensors expected, but got (\d+)D and (\d+)D tensors",
     r"torch.dot умножает только одномерные векторы, а получены тензоры с \1 и \2 осями: для пакетов матриц "
     r"используйте @ (torch.matmul)"),
    (r"self must be a matrix",
     "torch.mm умножает только матрицы с двумя осями: для пакета матриц используйте @ (torch.matmul) или torch.bmm"),
    (r"only one element tensors can be converted to Python scalars",
     "в число (float, int, .item(), torch.tensor([...])) превращается только тензор из одного элемента"),
    (r"(\w+)\(\): argument '(\w+)' must be ([\w.]+), not ([\w.]+)", r"\1(): аргумент \2 должен быть типа \3, а не \4"),
    (r"'([\w.]+)' object cannot be interpreted as an integer",
     r"значение типа \1 нельзя использовать как целое число (номер или размер)"),
    (r"index (-?\d+) is out of range", r"индекс \1 за пределами списка (номера начинаются с 0)"),
    (r"(\w+)\(\): argument '\w+' failed to unpack the object at pos (\d+) with error "
     r"\"type must be tuple of ints,\s*but got (\w+)\"",
     r"\1(): размеры должны быть целыми числами, а \2-й из них — \3 (деление / даёт float: делите нацело, //)"),
    (r"(\w+)\(\): argument '(\w+)' \(position \d+\) must be tuple of ints, not (\w+)",
     r"\1(): аргумент \2 должен быть кортежем целых чисел, например (n_embd,), а не \3"),
    (r"dropout probability has to be between 0 and 1, but got ([\w.+-]+)",
     r"вероятность dropout должна быть от 0 до 1, а получено \1"),
    (r"too many indices for tensor of dimension (\d+)", r"индексов больше, чем осей у тензора (у него осей: \1)"),
    (r"invalid multinomial distribution \(sum of probabilities <= 0\)",
     "torch.multinomial: сумма вероятностей не больше нуля (передайте softmax логитов, а не сами логиты)"),
    (r"expand\(.*?\): the number of sizes provided \((\d+)\) must be greater or equal to the number of "
     r"dimensions in the tensor \((\d+)\)", r"expand: задано размеров \1, а осей у тензора \2"),
    (r"(\w+)\(\): could not infer output dtype\. \w+ dtype must be either a floating point or complex dtype\. "
     r"Got: (\w+)", r"\1() считается только для вещественных тензоров, а этот типа \2: приведите его к float (.float())"),
    (r"(\w+)\(\) takes (\d+) positional arguments? but (\d+) (?:were|was) given",
     r"\1 принимает \2 аргумента(ов), а передано \3"),
    (r"(\w+)\(\) missing (\d+) required positional argument", r"\1: не передан обязательный аргумент"),
    (r"No module named '([\w.]+)'", lambda match: _no_module(match.group(1))),
]
_PACKAGES = {"torch", "matplotlib", "tqdm", "ipywidgets", "numpy", "IPython", "jupyterlab"}   # the README's


def _no_module(name):
    """A missing module: a package the course needs, or perhaps the student's own file."""
    package = name.split(".")[0]
    if package in _PACKAGES and name != package:
        return "в пакете «%s» нет модуля «%s»: проверьте, как пишется его имя" % (package, name)
    if package in _PACKAGES:
        return "не установлен пакет «%s»: установите его (pip install %s) и перезапустите ядро" % (package, package)
    return ("нет модуля «%s»: если это ваш файл %s.py, перенесите его код в ноутбук (сдаются и проверяются только "
            "ноутбуки); если это пакет, установите его (pip install %s) и перезапустите ядро" % (name, package, package))
_SYNTAX_TRANSLATIONS = [     # a SyntaxError's words
    (r"invalid syntax. Perhaps you forgot a comma\?", "неверный синтаксис: возможно, пропущена запятая"),
    (r"invalid syntax", "неверный синтаксис"),
    (r"unexpected indent", "лишний отступ"),
    (r"expected an indented block", "после двоеточия нужна строка с отступом"),
    (r"unindent does not match any outer indentation level", "отступ не совпадает ни с одним уровнем выше"),
    (r"unterminated string literal", "строка не закрыта кавычкой"),
    (r"'(.)' was never closed", r"скобка «\1» не закрыта"),
    (r"unmatched '(.)'", r"лишняя закрывающая скобка «\1»"),
    (r"expected ':'", "пропущено двоеточие"),
]
_TRANSLATIONS = _MESSAGE_TRANSLATIONS + _SYNTAX_TRANSLATIONS
_KINDS = {
    "NameError": "имя не определено", "AttributeError": "нет такого атрибута",
    "TypeError": "неверный тип значения", "ValueError": "неверное значение",
    "IndexError": "индекс за пределами", "KeyError": "нет такого ключа",
    "RuntimeError": "ошибка PyTorch при вычислении", "ZeroDivisionError": "деление на ноль",
    "FileNotFoundError": "файл не найден", "ModuleNotFoundError": "пакет не установлен",
    "ImportError": "не удалось импортировать", "NotImplementedError": "операция не поддерживается",
    "AssertionError": "проверка (assert) не пройдена", "RecursionError": "бесконечная рекурсия",
    "MemoryError": "не хватило памяти", "SyntaxError": "синтаксическая ошибка",
    "IndentationError": "ошибка в отступах", "OverflowError": "переполнение числа",
}


def in_russian(error):
    """A Russian phrase for a Python error (its own message translated when known)."""
    if isinstance(error, NotImplementedError) and not str(error):   # the stub (gpt_harness.unwritten)
        return "решение ещё не написано: удалите raise NotImplementedError() и напишите его"
    if isinstance(error, KeyError):
        return f"нет ключа {error.args[0]!r}" if error.args else _KINDS["KeyError"]
    text = error.msg if isinstance(error, SyntaxError) else str(error)
    text = (text or "").strip().split("\n")[0]
    raised = _raising_line(error)
    for pattern, russian in _LINE_TRANSLATIONS if raised else ():
        match = re.search(pattern, f"{text}; строка {raised[0]}: {raised[1]}")
        if match:
            return match.expand(russian)
    for pattern, russian in _TRANSLATIONS:
        match = re.search(pattern, text)
        if match:
            return russian(match) if callable(russian) else match.expand(russian)
    if isinstance(error, AssertionError) and text:
        return text      # the course's asserts speak Russian
    for cls in type(error).__mro__:
        if cls.__name__ in _KINDS:
            return _KINDS[cls.__name__]
    return "ошибка при выполнении"


def _raising_line(error):
    """(line number, code) of the line that raised ``error``, or None."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None
    code = code_line(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
    return (tb.tb_lineno, code) if code else None


def russian_text(text):
    """``text`` with the Python and torch messages it quotes translated where known."""
    for pattern, russian in _MESSAGE_TRANSLATIONS:   # messages, not syntax words
        text = re.sub(pattern, russian, text)
    # the exception's English class name goes too (a translated message follows it; %tb has the original)
    return re.sub(r"\b[A-Z][A-Za-z]*(?:Error|Exception): (?=[^;\n]*[а-яА-ЯёЁ])", "", text)


def without_line(message):
    """A diagnosis message without the student's line it quotes at its end (shown apart)."""
    match = re.search(r"(; |\()строка \d+: .*\)$", message)
    if match:
        message = message[:match.start()].rstrip() + (")" if match.group(1) == "; " else "")
    return message.replace(" ()", "")


SHORT_INPUT = "при T < n_ctx"
N_CTX_HINT = "здесь используется n_ctx, а вход бывает короче: берите длину T из формы входа"


def n_ctx_line(cls, finding):
    """Where forward uses n_ctx, for a crash on inputs shorter than n_ctx, a mask of n_ctx rows
    (T taken from the configuration) or positions taken for all n_ctx (else None)."""
    if finding.get("key") not in ("exception", "positions_n_ctx", "mask_not_sliced") \
            or finding.get("where") != SHORT_INPUT \
            or cls is None:
        return None
    return forward_line(cls, "n_ctx", fallback=False)


def _has_cyrillic(text):
    return bool(re.search("[а-яА-ЯёЁ]", text or ""))


# ----------------------------------------------------------------- explain

def explain(error, tb=None, namespace=None, shell=None):
    """The Russian lines shown for ``error`` raised in a notebook cell."""
    if isinstance(error, CourseError):
        return error.lines()
    tb = tb if tb is not None else error.__traceback__
    namespace = namespace if namespace is not None else {}
    if isinstance(error, SyntaxError):
        return _syntax_lines(error, shell)
    frames = student_frames(tb, shell)
    if isinstance(error, KeyboardInterrupt):
        return _interrupt_lines(frames)
    missing = _missing_course_class(error, namespace)
    if missing:
        return missing
    earlier = _earlier_step_frame(frames)
    if earlier is not None:
        return _earlier_step_lines(error, earlier)
    task = None if GRADING else own_task(namespace)
    if task and not _concerns(error, task, frames, namespace):
        task = None
    finding = _finding(task, namespace) if task else None
    if finding is not None:
        return _finding_lines(error, task, finding, frames, namespace)
    return _plain_lines(error, frames, task)


def _syntax_lines(error, shell):
    label = cell_label(error.filename or "", shell) or "эта ячейка"
    where = f"{label}, строка {error.lineno}" if error.lineno else label
    code = (error.text or "").strip()
    lines = [f"{RED}{BOLD}Синтаксическая ошибка ({where}): {in_russian(error)}.{RESET}"]
    if code:
        lines.append(f"Строка: {code}")
    lines.append("Исправьте строку и выполните ячейку снова. "
                 f"Сообщение Python: {type(error).__name__}: {error.msg}")
    return lines


def _missing_course_class(error, namespace):
    """Lines for a NameError of a course class: its cell was not run (in its own step's notebook),
    or an earlier step's import did not define it; None for any other error."""
    match = re.search(r"name '(\w+)' is not defined", str(error)) if isinstance(error, NameError) else None
    if match is None:
        return None
    try:
        kit = _course()["kit"]
    except Exception:
        return None
    cls, task = match.group(1), _course()["task_of_class"].get(match.group(1))
    if task is None:
        return None
    notebook = kit.NOTEBOOK_OF_TASK[task]
    here = current_notebook(namespace)
    step, here_step = step_of(notebook), step_of(here) if here else ""   # '01_head (1)' is step 01 too
    if here_step == step:
        first = f"Класс {cls} не определён: выполните выше ячейку с class {cls} (Shift+Enter), затем эту ячейку снова."
    elif here_step.isdigit():
        first = (f"Класс {cls} не загружен из шага {step}: выполните ячейку с import_notebook выше и исправьте "
                 "ошибку, о которой она сообщит.")
    else:  # the notebook is not known (Colab, nbclient): both ways a class comes into a notebook
        first = (f"Класс {cls} не определён: выполните выше ячейку с class {cls} (в ноутбуке шага {step}) или с "
                 f"import_notebook (в следующих шагах) и исправьте ошибку, о которой она сообщит.")
    return [f"{RED}{BOLD}{first}{RESET}", f"({TB_HINT}.)"]


def current_notebook(namespace):
    """The name of the notebook the kernel runs ('01_head'), where the front end tells it
    (JupyterLab's ``__session__``, VS Code's ``__vsc_ipynb_file__``); else None."""
    for key in ("__session__", "__vsc_ipynb_file__"):
        path = namespace.get(key) if hasattr(namespace, "get") else None
        if isinstance(path, str) and path.endswith(".ipynb"):
            return re.split(r"[\\/]", path)[-1][:-len(".ipynb")]
    return None


def _interrupt_lines(frames):
    """The cell was stopped (■, Kernel → Interrupt, or a time limit): where, and that nothing is lost."""
    here = [f for f in frames if f[3] == "<module>"] or frames
    where = f" ({where_text(*here[-1][:3])})" if here else ""
    return [f"{RED}{BOLD}Выполнение ячейки остановлено{where}.{RESET}",
            "Всё, что посчитано до остановки, сохранилось (например, модель и история потерь при обучении); "
            "выполните ячейку снова, чтобы начать её заново."]


def _earlier_step_frame(frames):
    """The innermost frame in a cell of an earlier notebook (run by import_notebook), if any."""
    earlier = [f for f in frames if ".ipynb, ячейка " in f[0]]
    return earlier[-1] if earlier else None


def _earlier_step_lines(error, frame):
    label, lineno, filename, _ = frame
    notebook = label.split(",")[0]
    step = step_of(notebook)
    return [f"{RED}{BOLD}Сначала исправьте шаг {step}: {in_russian(error)} "
            f"({where_text(label, lineno, filename)}).{RESET}",
            f"Исправьте {notebook}, сохраните его (Ctrl+S) и выполните эту ячейку снова. {TB_HINT}."]


def _concerns(error, task, frames, namespace):
    """The error came from the task's class, or from a cell of tests (one with asserts)."""
    cls = namespace.get(_course()["kit"].CLASS_OF_TASK[task])
    if isinstance(error, AssertionError):
        return True
    if any(_defined_in(cls, f[2]) for f in frames if f[3] != "<module>"):
        return True
    cell = frames[0][2] if frames else None
    return bool(cell) and any(line.lstrip().startswith("assert ") for line in linecache.getlines(cell))


def _finding(task, namespace):
    """The first finding of the self-check for the notebook's own class, or None."""
    try:
        kit = _course()["kit"]
        findings = kit.diagnose(task, namespace, namespace.get("config"))
    except Exception:
        return None
    return findings[0] if findings else None


def _finding_lines(error, task, finding, frames, namespace):
    kit = _course()["kit"]
    cls_name = kit.CLASS_OF_TASK[task]
    step = step_of(kit.NOTEBOOK_OF_TASK[task])
    cls = namespace.get(cls_name)
    message = russian_text(finding["message"])
    own = [f for f in frames if f[3] != "<module>" and _defined_in(cls, f[2])]
    if own:
        label, lineno, filename, _ = own[-1]
        place = (label, lineno, filename)
    else:
        place = forward_line(cls, finding["key"]) if cls is not None else None
    head = f"Шаг {step}, {cls_name}: {without_line(message) if place else message}"
    if finding.get("where") and finding["where"] not in head:
        head += f" ({finding['where']})"
    lines = [f"{RED}{BOLD}{head}.{RESET}"]
    if place is not None:
        lines.append(f"Ваш код: {where_text(*place)}")
    cause = n_ctx_line(cls, finding)
    if cause is not None and cause != place:
        lines.append(f"Скорее всего, причина — {where_text(*cause)}: {N_CTX_HINT}.")
    elif cause is not None:
        lines.append(f"({N_CTX_HINT}.)")
    lines.append(f"Исправьте класс {cls_name}, выполните его ячейку и эту ячейку снова. Все найденные ошибки "
                 f"перечислит самопроверка ниже; {TB_HINT}.")
    return lines


def _defined_in(cls, filename):
    """True when ``cls`` (its methods) was defined in the file (cell) ``filename``."""
    if cls is None:
        return False
    for value in vars(cls).values():
        code = getattr(value, "__code__", None)
        if code is not None and code.co_filename == filename:
            return True
    return False


def _plain_lines(error, frames, task):
    where = ""
    inner = [f for f in frames if f[3] != "<module>"]
    frame = inner[-1] if inner else (frames[-1] if frames else None)
    if frame is not None:
        label, lineno, filename, _ = frame
        where = f" ({where_text(label, lineno, filename)})"
    prefix = ""
    if task:
        kit = _course()["kit"]
        prefix = f"Шаг {step_of(kit.NOTEBOOK_OF_TASK[task])}, {kit.CLASS_OF_TASK[task]}: "
    lines = [f"{RED}{BOLD}{prefix}{in_russian(error)}{where}.{RESET}"]
    original = str(error).strip().split("\n")[0]
    if original and not _has_cyrillic(original):
        lines.append(f"Сообщение Python: {type(error).__name__}: {original[:300]}")
    lines.append(f"({TB_HINT}.)")
    return lines


# ------------------------------------------------------------ warnings

# Warnings that a mistake in this course's code makes PyTorch print, said in Russian with the
# student's line; any other warning is shown as Python shows it.
_WARNINGS = [
    (r"Implicit dimension choice for softmax",
     "F.softmax вызван без dim: у трёхмерного тензора он нормирует по оси 0 (оси пакета), а не по "
     "строкам; укажите ось: F.softmax(wei, dim=-1)"),
    (r"To copy construct from a tensor",
     "torch.tensor(...) от тензора делает лишнюю копию: используйте сам тензор или t.clone().detach()"),
    (r"Using a target size .* that is different to the input size",
     "формы выхода и целей функции потерь не совпадают: PyTorch растянет их (broadcasting), и loss "
     "получится неверным; приведите их к одной форме"),
    (r"The use of `x\.T` on tensors of dimension other than 2",
     "x.T у тензора не с двумя осями переставляет все оси: чтобы поменять местами две последние, "
     "используйте x.transpose(-2, -1)"),
    (r"\.grad attribute of a Tensor that is not a leaf Tensor",
     ".grad заполняется только у параметров модели (листьев графа вычислений): смотрите .grad у "
     "model.parameters(), а не у промежуточных тензоров"),
]
_SHOWWARNING = warnings.showwarning   # Python's own, for every other warning


def russian_warning(message):
    """The Russian words for a warning's text, or None when it is not one of ``_WARNINGS``."""
    text = str(message)
    return next((russian for pattern, russian in _WARNINGS if re.search(pattern, text)), None)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the notebook: a known warning in Russian, at the student's line."""
    russian = russian_warning(message)
    if russian is None:
        return _SHOWWARNING(message, category, filename, lineno, file, line)
    label = cell_label(str(filename))
    where = f" ({where_text(label, lineno, str(filename))})" if label else ""
    try:
        print(f"Предупреждение{where}: {russian}", file=file if file is not None else sys.stderr)
    except (OSError, ValueError):
        pass   # as Python's own: a closed stream loses the warning, not the cell


# ------------------------------------------------------------ the handler

class ExplainedError(Exception):
    """What the cell's error output carries: the Russian explanation (the original is ``__cause__``)."""


def _handler(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler: Russian lines instead of a traceback."""
    try:
        sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb   # for %tb
        if sys.version_info >= (3, 12):
            sys.last_exc = value  # novermin (3.12+ only, guarded)
        lines = explain(value, tb, shell.user_ns, shell)
        shown = type(etype.__name__, (ExplainedError,), {})(re.sub(r"\x1b\[[0-9;]*m", "", lines[0]))
        shown.__cause__ = value
        shell._showtraceback(type(shown), shown, lines)
    except Exception:   # never lose the error: fall back to IPython's own traceback
        try:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        except Exception:
            pass
    return None


def install(shell=None):
    """Explain every error of the notebook, and the warnings a course mistake gives, in Russian
    (idempotent); False outside an IPython kernel."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc") or not hasattr(shell, "_showtraceback"):
        return False
    shell.set_custom_exc((Exception, KeyboardInterrupt), _handler)
    if not GRADING:   # the grader's kernels keep Python's warnings (the grader reads its own checks)
        warnings.showwarning = _show_warning
    return True
