#!/usr/bin/env python3
"""Reference for src/data/mc-layouts.ts: the rows of test/fixtures/data/mc-layouts/*.jsonl turned
into multiple-choice items the way lm-evaluation-harness builds its requests from them. Each
function transcribes the task's doc_to_text / doc_to_choice / doc_to_target (yaml and utils.py
named beside it). Writes expected.json ({file: [items]}); no third-party packages.

    python3 scripts/ref_mc_layouts.py      # from the repository root
"""
import json
import os
import re

DIR = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'data', 'mc-layouts')


def item(context, choices, label, doc, continuation=None):
    out = {'context': context, 'choices': choices, 'label': label}
    if isinstance(doc.get('id'), str):  # kdqat keeps a string id, as in its own items
        out['id'] = doc['id']
    if continuation is not None:
        out['continuation'] = continuation
    return out


# hellaswag/utils.py: preprocess, process_docs; hellaswag.yaml: doc_to_text query, choices, gold
def hellaswag_preprocess(text):
    text = text.strip()
    text = text.replace(' [title]', '. ')
    text = re.sub('\\[.*?\\]', '', text)
    text = text.replace('  ', ' ')
    return text


def hellaswag(doc):
    ctx = doc['ctx_a'] + ' ' + doc['ctx_b'].capitalize()
    return item(hellaswag_preprocess(doc['activity_label'] + ': ' + ctx),
                [hellaswag_preprocess(e) for e in doc['endings']], int(doc['label']), doc)


# arc/arc_easy.yaml: "Question: {{question}}\nAnswer:", choices.text, choices.label.index(answerKey)
def arc(doc):
    return item('Question: ' + doc['question'] + '\nAnswer:', doc['choices']['text'],
                doc['choices']['label'].index(doc['answerKey']), doc)


# openbookqa/openbookqa.yaml: question_stem, choices.text, choices.label.index(answerKey.lstrip())
def openbookqa(doc):
    return item(doc['question_stem'], doc['choices']['text'],
                doc['choices']['label'].index(doc['answerKey'].lstrip()), doc)


# mmlu/default/_default_template_yaml
def mmlu(doc):
    c = doc['choices']
    text = (doc['question'].strip() + '\nA. ' + c[0] + '\nB. ' + c[1] + '\nC. ' + c[2] + '\nD. ' + c[3]
            + '\nAnswer:')
    return item(text, ['A', 'B', 'C', 'D'], doc['answer'], doc)


# piqa/piqa.yaml
def piqa(doc):
    return item('Question: ' + doc['goal'] + '\nAnswer:', [doc['sol1'], doc['sol2']], doc['label'], doc)


# sciq/sciq.yaml: the correct answer is the fourth choice
def sciq(doc):
    return item(doc['support'].lstrip() + '\nQuestion: ' + doc['question'] + '\nAnswer:',
                [doc['distractor1'], doc['distractor2'], doc['distractor3'], doc['correct_answer']], 3, doc)


# winogrande/preprocess_winogrande.py (multiple_inputs: the choices are contexts)
def winogrande(doc):
    idx = doc['sentence'].index('_')
    choices = [doc['sentence'][:idx] + opt for opt in [doc['option1'], doc['option2']]]
    target = doc['sentence'][idx + 1:].strip()
    return item('', choices, {'1': 0, '2': 1}[doc['answer']], doc, continuation=target)


# super_glue/copa/utils.py
def copa(doc):
    connector = {'cause': 'because', 'effect': 'therefore'}[doc['question']]

    def convert_choice(choice):
        return choice[0].lower() + choice[1:]
    return item(doc['premise'].strip()[:-1] + f' {connector}',
                [convert_choice(doc['choice1']), convert_choice(doc['choice2'])], doc['label'], doc)


# super_glue/boolq/default.yaml (google/boolq rows carry "answer": bool instead of "label")
def boolq(doc):
    label = doc['label'] if 'label' in doc else int(doc['answer'])
    return item(doc['passage'] + '\nQuestion: ' + doc['question'] + '?\nAnswer:', ['no', 'yes'], label, doc)


LAYOUTS = {'hellaswag': hellaswag, 'arc': arc, 'openbookqa': openbookqa, 'mmlu': mmlu, 'piqa': piqa,
           'sciq': sciq, 'winogrande': winogrande, 'copa': copa, 'boolq': boolq, 'boolq-answer': boolq}

out = {}
for name, fn in LAYOUTS.items():
    with open(os.path.join(DIR, name + '.jsonl'), encoding='utf-8') as f:
        out[name + '.jsonl'] = [fn(json.loads(line)) for line in f if line.strip()]
with open(os.path.join(DIR, 'expected.json'), 'w', encoding='utf-8') as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write('\n')
print(f'wrote {os.path.join(DIR, "expected.json")}: {sum(len(v) for v in out.values())} items')
