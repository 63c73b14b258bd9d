"""Тексты ошибок: что написано вам, когда в решении найдена ошибка.

Только данные: ключ ошибки -> русский текст с подсказкой, как исправить. Эти же
тексты видит проверка преподавателя (единственное место, где они написаны).
``MESSAGES[task][key]``: ``GENERIC`` для всех заданий и ``SPECIFIC`` для одного.
"""

GENERIC = {
    "not_implemented": "forward не реализован: удалите raise NotImplementedError() и напишите решение",
    "no_return": "forward ничего не возвращает: не забудьте return",
    "class_missing": "класс не найден: не переименовывайте его и выполните ячейку с ним",
    "solution_failed": "ячейка с классом не выполнилась, поэтому класса нет",
    "syntax_error": "ошибка в коде ячейки с классом (SyntaxError или NameError): исправьте указанную строку "
                    "и выполните ячейку заново",
    "exception": "ошибка при выполнении forward",
    "transpose_all_axes": "x.T у тензора с тремя осями переставляет все оси ((B, T, C) становится (C, T, B)): "
                          "чтобы поменять местами две последние оси, используйте x.transpose(-2, -1)",
    "wrong_shape": "неверная форма выхода",
    "no_grad": "градиент не доходит до входа или параметров: не используйте detach(), "
               "torch.no_grad() и .data в forward",
    "wrong_grad": "градиенты не совпадают с тем, что вычисляет forward: не изменяйте тензоры на месте "
                  "и не отрывайте их от графа вычислений (detach)",
    "future_leak": "будущие токены влияют на выход для прошлых позиций: проверьте маску",
    "wrong_output": "результат не соответствует описанию задания: сверьте каждый шаг forward с описанием",
    "wrong_input": "на вход подмодуля подаётся не то, что требует задание",
    "unused_parameter": "параметр подмодуля не участвует в вычислении: вызывайте подмодуль целиком "
                        "(например, self.lm_head(x), а не F.linear(x, self.lm_head.weight))",
    "wrong_role": "подмодуль используется не в своей роли: сверьте, какой слой что делает по заданию",
    "no_dropout": "dropout не применяется в режиме обучения: примените self.dropout",
    "dropout_in_eval": "в режиме eval выход с dropout > 0 должен совпадать с выходом без dropout "
                       "(используйте модуль self.dropout, а не F.dropout без training=self.training)",
    "random_in_eval": "forward случаен в режиме eval: два вызова на одном входе дают разное. Слой, созданный "
                      "внутри forward (nn.Dropout(p)(x)), всегда в режиме обучения, а F.dropout без "
                      "training=self.training работает и в eval: используйте слои из __init__ (self.dropout)",
    "dropout_wrong": "dropout применён не там или это не dropout: в режиме обучения dropout обнуляет "
                     "элементы с вероятностью p, а остальные делит на 1 - p",
    "dropout_on_output": "dropout применён к выходу, а не к весам внимания wei",
    "dropout_error": "forward падает или меняет форму в режиме обучения (train) при dropout > 0",
    "not_pair": "forward должен возвращать пару (logits, loss)",
    "loss_without_targets": "без targets loss должен быть None: не считайте loss, если targets не переданы",
    "flat_logits_without_targets": "без targets логиты должны иметь форму (B, T, vocab_size): "
                                   "иначе generate не работает",
    "generate_broken": "generate не работает с вашим forward",
    "no_loss": "loss не вычислен, хотя targets переданы",
    "loss_not_scalar": "loss должен быть скаляром (среднее по всем токенам)",
    "loss_not_tensor": "loss — число, а не тензор (например, после .item()): верните сам тензор "
                       "F.cross_entropy(...), по нему обучение вызывает loss.backward()",
    "wrong_loss": "значение loss не совпадает с кросс-энтропией F.cross_entropy по всем токенам",
    "selfcheck_error": "самопроверка не смогла разобрать этот класс (это не ошибка в вашем решении); "
                       "скрытые проверки при сдаче от этого не зависят",
    # said only by the grader
    "generate_exception": "generate падает с вашим forward: generate берёт logits[:, -1, :], "
                          "поэтому без targets логиты должны иметь форму (B, T, vocab_size)",
    "probe_timeout": "forward не завершился за время, отведённое скрытым проверкам: он зацикливается "
                     "или работает слишком долго (проверьте его на других размерах и при T = 1)",
    "probe_memory": "во время скрытых проверок превышен лимит памяти: forward создаёт слишком большие тензоры",
    "probe_disk": "во время скрытых проверок превышен лимит на файлы: forward записывает файлы",
    "probe_kernel_died": "ядро остановилось во время скрытых проверок: forward завершает процесс "
                         "(os._exit, exit() в коде ядра) или роняет его",
    "probe_exit": "forward вызывает sys.exit() или exit(): проверка останавливается, а не получает результат",
    "probe_no_results": "скрытые проверки не вернули результат: код решения подменяет то, чем пользуется "
                        "проверка (torch.save, torch.load, get_ipython)",
    "probe_tampered": "результаты скрытых проверок подменены или испорчены: код решения пишет в файлы проверки",
    "probe_failed": "скрытые проверки не смогли выполниться",
    "kernel_died": "ядро остановилось до скрытых проверок этого задания: в ячейке с тестами или раньше "
                   "(forward или код ноутбука завершает процесс, os._exit, или роняет его)",
    "timeout": "время на ноутбук исчерпано до скрытых проверок: ускорьте код",
    "grader_error": "ошибка проверяющей программы при сравнении результатов (не ваша): "
                    "преподаватель видит её в отчёте и проверит работу заново",
}

SPECIFIC = {
    "head": {
        "no_mask": "маска не применена: каждый токен видит будущие токены",
        "inverted_mask": "маска перевёрнута: закрыто прошлое, а не будущее (используйте tril == 0)",
        "mask_with_zero": "маскирование нулём вместо -inf: после softmax будущие токены всё равно получают вес",
        "weights_returned": "forward возвращает сами веса внимания wei, форма (B, T, T): верните их "
                            "взвешенную сумму значений, out = wei @ v, форма (B, T, head_size)",
        "scores_from_x": "оценки внимания посчитаны из самого x, без запросов и ключей: wei = q @ k.transpose(-2, -1), "
                         "где q = self.query(x), k = self.key(x)",
        "mask_finite": "маска заполняет будущие позиции числом, а не -inf: после softmax будущие токены "
                       "всё равно получают вес (заполняйте float('-inf'))",
        "mask_after_softmax": "маска применена после softmax: веса строк больше не суммируются в 1",
        "mask_diagonal": "маска закрывает и сам токен (диагональ): токен видит себя и прошлое, маска — "
                         "self.tril[:T, :T] == 0; иначе у первого токена все оценки -inf и выход NaN",
        "mask_not_sliced": "маска не обрезана до длины входа: используйте self.tril[:T, :T], "
                           "иначе forward падает при T < n_ctx",
        "no_scale": "нет масштабирования: оценки внимания нужно умножить на head_size ** -0.5",
        "scale_n_embd": "неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd) "
                        "(C = x.shape[-1] — это n_embd, а не head_size)",
        "scale_multiplied": "масштаб применён наоборот: нужно делить на sqrt(head_size), а не умножать",
        "scale_wrong": "неверный масштаб оценок внимания: умножьте q @ k.transpose(-2, -1) на head_size ** -0.5",
        "softmax_wrong_dim": "softmax по неверной оси: нормируйте по последней оси, F.softmax(wei, dim=-1)",
        "no_softmax": "softmax не применён: веса внимания — F.softmax(wei, dim=-1) после маски, "
                      "иначе -inf из маски даёт в выходе NaN и веса строк не суммируются в 1",
        "softmax_replaced": "вместо softmax применена другая функция: веса внимания — F.softmax(wei, dim=-1) "
                            "после маски, каждая их строка суммируется в 1",
        "scale_after_softmax": "масштаб применён после softmax: умножайте на head_size ** -0.5 оценки "
                               "q @ k.transpose(-2, -1) до маски и softmax, а не веса внимания",
        "q_k_swapped": "перепутаны запросы и ключи: оценки внимания — это q @ k.transpose(-2, -1)",
        "value_is_key": "взвешиваются ключи вместо значений: умножайте веса на v = self.value(x)",
        "value_is_query": "взвешиваются запросы вместо значений: умножайте веса на v = self.value(x)",
        "no_value_projection": "веса умножаются на x, а не на v = self.value(x)",
        "weights_not_applied": "веса внимания не применены: выход должен быть wei @ v",
        "dropout_wrong": "dropout применён не к весам внимания или это не dropout: self.dropout(wei) "
                         "после softmax обнуляет каждый вес с вероятностью p и делит остальные на 1 - p",
    },
    "multihead": {
        "no_projection": "нет проекции: после конкатенации пропустите результат через self.proj",
        "proj_on_input": "self.proj применён ко входу x, а не к конкатенации выходов голов",
        "proj_twice": "self.proj применён дважды: проекция нужна один раз, после конкатенации",
        "summed_heads": "головы сложены, а не сконкатенированы по последней оси",
        "concat_wrong_dim": "конкатенация по неверной оси: объединяйте головы по последней оси (dim=-1)",
        "interleaved_heads": "головы объединены в неверном порядке: нужна torch.cat([h(x) for h in self.heads], "
                             "dim=-1), выходы голов целиком друг за другом, по порядку",
        "one_head_repeated": "используется только одна голова: пропустите x через каждую из self.heads",
        "extra_residual": "лишнее residual-соединение: x + ... делается в Block, а не в MultiHeadAttention",
        "extra_activation": "лишняя функция активации после self.proj: в MultiHeadAttention нелинейности нет "
                            "(ReLU — в FeedFoward), верните self.dropout(self.proj(out))",
        "dropout_wrong": "dropout применён не там или это не dropout: self.dropout применяется к выходу "
                         "self.proj и обнуляет каждый элемент с вероятностью p, деля остальные на 1 - p",
    },
    "feedforward": {
        "no_relu": "пропущена ReLU: используйте self.net целиком",
        "gelu_instead_of_relu": "GELU вместо ReLU: в задании функция активации — ReLU (self.net[1])",
        "activation_not_relu": "функция активации не ReLU (tanh, sigmoid, SiLU, ...): в задании — ReLU "
                               "(self.net[1]), используйте self.net целиком",
        "extra_residual": "лишнее residual-соединение: x + ... делается в Block, а не в FeedFoward",
        "no_second_linear": "пропущен второй линейный слой",
        "relu_at_end": "лишняя ReLU на выходе",
        "identity": "forward возвращает вход без изменений",
        "net_twice": "self.net применён дважды: верните self.net(x) один раз",
        "output_changed": "выход self.net изменён после него: верните self.net(x) как есть (LayerNorm и "
                          "residual-соединение делает Block)",
        "net_not_applied": "self.net не применяется к x: верните self.net(x) (в нём оба линейных слоя, ReLU "
                           "и dropout)",
        "dropout_wrong": "dropout применён не там или это не dropout: последний слой self.net (Dropout) "
                         "обнуляет каждый элемент выхода с вероятностью p и делит остальные на 1 - p",
    },
    "block": {
        "pre_norm": "pre-norm вместо требуемого post-norm: нужно x = ln1(x + sa(x)), затем ln2(x + ffwd(x))",
        "norm_before_residual": "LayerNorm применён до residual-сложения (x = ln1(x); x = x + sa(x)): "
                                "нормализуйте сумму, x = ln1(x + sa(x))",
        "no_residual": "нет residual-соединений: прибавляйте вход к выходу sa и ffwd",
        "no_sa_residual": "нет residual-соединения вокруг self.sa",
        "no_ffwd_residual": "нет residual-соединения вокруг self.ffwd",
        "same_layernorm": "один и тот же LayerNorm использован дважды: после ffwd нужен self.ln2",
        "no_layernorm": "LayerNorm не применён: нужно x = ln1(x + sa(x)), затем ln2(x + ffwd(x))",
        "residual_from_input": "второе residual-соединение берёт исходный вход, а не результат после внимания",
        "ffwd_first": "перепутан порядок: сначала внимание (sa), потом ffwd",
        "parallel_branches": "ffwd применён к исходному входу, а не к результату внимания",
        "layernorms_swapped": "перепутаны LayerNorm: после sa нужен self.ln1, после ffwd — self.ln2",
    },
    "gpt_model": {
        "pair_swapped": "forward возвращает пару в обратном порядке, (loss, logits): верните logits, loss",
        "no_positional": "нет позиционных эмбеддингов: прибавьте position_embedding_table(torch.arange(T))",
        "positions_wrong": "позиционные эмбеддинги взяты не для позиций 0..T-1",
        "positions_n_ctx": "позиции взяты для всех n_ctx, а не для длины входа: используйте torch.arange(T), "
                           "T = idx.shape[1] (T бывает меньше n_ctx)",
        "no_final_layernorm": "не применён финальный LayerNorm self.ln_f",
        "final_layernorm_misplaced": "финальный LayerNorm self.ln_f применён до блоков: он нормирует выход "
                                     "self.blocks, logits = self.lm_head(self.ln_f(self.blocks(x)))",
        "blocks_not_applied": "блоки трансформера не применены: пропустите x через self.blocks",
        "residual_around_blocks": "лишнее residual-соединение вокруг блоков: Block сам прибавляет свой вход "
                                  "(x + ...), в GPTModel блоки применяются подряд: x = self.blocks(x)",
        "logits_depend_on_targets": "логиты зависят от targets: с targets и без них forward должен давать "
                                    "одни и те же логиты, targets нужны только для loss",
        "logits_last_only": "логиты посчитаны только для последней позиции (x[:, -1, :]): нужны логиты "
                            "для всех T позиций, формы (B, T, vocab_size); последнюю позицию выбирает generate",
        "probabilities_returned": "forward возвращает вероятности (softmax), а не логиты: верните выход self.lm_head "
                                  "(F.cross_entropy и generate сами применяют softmax)",
        "softmax_before_loss": "softmax перед cross_entropy: F.cross_entropy сам применяет log_softmax к логитам",
        "sum_reduction": "loss суммируется, а не усредняется (reduction='sum')",
        "nll_on_logits": "nll_loss на сырых логитах: нужен F.cross_entropy (или log_softmax перед nll_loss)",
        "shifted_targets": "цели сдвинуты ещё раз: targets уже сдвинуты в get_batch",
        "mse_loss": "неверная функция потерь: нужна кросс-энтропия",
        "train_differs": "в режиме обучения (model.train()) логиты другие, чем в режиме eval, хотя dropout = 0: "
                         "в forward лишний случайный слой (dropout с вероятностью, заданной числом) или ветка "
                         "if self.training",
    },
}

# {task: {mistake key: Russian message with the fix}}
MESSAGES = {task: {**GENERIC, **specific} for task, specific in SPECIFIC.items()}
