import logging
from pathlib import Path

import matplotlib as mpl
import dill
import mitosis

mpl.rcParams['figure.dpi'] = 72
mpl.rcParams['savefig.dpi'] = 72
inputs = None

logger = logging.getLogger()
logger.setLevel(logging.INFO)

handler = logging.FileHandler('/tmp/tmp.oMu8kSsF3I/investigation/trials/2026-12-06_771107/experiment.log', delay=True)
handler.setFormatter(logging.Formatter('{levelname}:{asctime}:{module}:{lineno}:{message}', style='{'))
logger.addHandler(handler)
logger.info('Initialized experiment logger')
step_0 = mitosis.unpack('fit.steps:fit')
lookup_0 = mitosis.unpack('fit.steps:lookup')
resolved_args_0 = {}
print("Loaded step 0 as fit.steps:fit")
print("Loaded lookup 0 as fit.steps:lookup")
for arg_name, var_name in {'slope': 'two', 'noise': 'none'}.items():
    val = mitosis._lookup_param(arg_name, var_name, lookup_0).vals
    resolved_args_0.update({arg_name: val}) 
    print(arg_name,'=',resolved_args_0[arg_name])

for arg_name, var_name in {}.items():
    val = eval(var_name)
    resolved_args_0.update({arg_name: val}) 
    print(arg_name,'=',resolved_args_0[arg_name])

mitosis._prettyprint_config(Path('/tmp/tmp.oMu8kSsF3I/investigation/trials/2026-12-06_771107'), resolved_args_0)
print('Saving metadata to /tmp/tmp.oMu8kSsF3I/investigation/trials/2026-12-06_771107')
step_1 = mitosis.unpack('fit.steps:score')
lookup_1 = mitosis.unpack('fit.steps:lookup')
resolved_args_1 = {}
print("Loaded step 1 as fit.steps:score")
print("Loaded lookup 1 as fit.steps:lookup")
for arg_name, var_name in {'scale': 'half'}.items():
    val = mitosis._lookup_param(arg_name, var_name, lookup_1).vals
    resolved_args_1.update({arg_name: val}) 
    print(arg_name,'=',resolved_args_1[arg_name])

for arg_name, var_name in {}.items():
    val = eval(var_name)
    resolved_args_1.update({arg_name: val}) 
    print(arg_name,'=',resolved_args_1[arg_name])

mitosis._prettyprint_config(Path('/tmp/tmp.oMu8kSsF3I/investigation/trials/2026-12-06_771107'), resolved_args_1)
print('Saving metadata to /tmp/tmp.oMu8kSsF3I/investigation/trials/2026-12-06_771107')
if inputs is not None:
    curr_result = step_0(inputs, **resolved_args_0)
else:
    curr_result = step_0(**resolved_args_0)
with open(r'/tmp/tmp.oMu8kSsF3I/investigation/trials/2026-12-06_771107/results_0.dill', 'wb') as f:
    dill.dump(curr_result, f)
try:
    print(curr_result['metrics'])
except KeyError:
    pass
inputs = curr_result.get('data', None)
if inputs is not None:
    curr_result = step_1(inputs, **resolved_args_1)
else:
    curr_result = step_1(**resolved_args_1)
with open(r'/tmp/tmp.oMu8kSsF3I/investigation/trials/2026-12-06_771107/results_1.dill', 'wb') as f:
    dill.dump(curr_result, f)
try:
    print(curr_result['metrics'])
except KeyError:
    pass
inputs = curr_result.get('data', None)
print(curr_result['main'])