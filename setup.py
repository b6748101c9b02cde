"nbdev 2 style setup.py: everything is read from settings.ini, including the extras."
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o:cfg[o] for o in cfg_keys}

licenses = {
    'apache2': ('Apache Software License 2.0','OSI Approved :: Apache Software License'),
    'mit': ('MIT License', 'OSI Approved :: MIT License'),
    'gpl2': ('GNU General Public License v2', 'OSI Approved :: GNU General Public License v2 (GPLv2)'),
    'gpl3': ('GNU General Public License v3', 'OSI Approved :: GNU General Public License v3 (GPLv3)'),
    'bsd3': ('BSD License', 'OSI Approved :: BSD License'),
}
statuses = [ '1 - Planning', '2 - Pre-Alpha', '3 - Alpha',
    '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive' ]
py_versions = '3.10 3.11 3.12 3.13'.split()

def reqs(key):
    "The requirements listed under `key` in settings.ini (one per line; comments dropped)."
    return shlex.split(cfg.get(key, ''))

requirements = reqs('requirements') + reqs('pip_requirements')
# Every other `NAME_requirements` key of settings.ini is the extra NAME; dev is all of them plus its own (the tests use them all).
extras = {k[:-len('_requirements')]: reqs(k) for k in cfg if k.endswith('_requirements') and k not in ('requirements', 'pip_requirements')}
extras['dev'] = [r for name,rs in extras.items() if name != 'dev' for r in rs] + extras.get('dev', [])
min_python = cfg['min_python']
lic = licenses.get(cfg['license'].lower(), (cfg['license'], None))

setuptools.setup(
    name = cfg['lib_name'],
    license = lic[0],
    classifiers = [
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: '+o for o in py_versions[py_versions.index(min_python):]] + (['License :: ' + lic[1] ] if lic[1] else []),
    url = cfg['git_url'],
    packages = setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    include_package_data = True,
    package_data = {cfg['lib_path']: ['manifest.schema.json',  # the manifest's JSON Schema (tools/schema.py writes it)
        # the JS module and the page that `xdeploy web` copies into a site, and the package.json/lock that pin onnxruntime-web
        'js/xdeploy.mjs', 'js/index.html', 'js/package.json', 'js/package-lock.json'],
        # the C++ host's sources that `xdeploy cpp` copies into a project, and sdk.lock, which pins ONNX Runtime's headers (npm)
        cfg['lib_path'] + '.hosts': ['cpp_src/CMakeLists.txt', 'cpp_src/sdk.lock', 'cpp_src/include/xdeploy/*.hpp', 'cpp_src/src/*.cpp',
                                     'cpp_src/src/*.hpp', 'cpp_src/cli/*.cpp', 'cpp_src/qt/*.cpp']},
    install_requires = requirements,
    extras_require = extras,
    dependency_links = cfg.get('dep_links','').split(),
    python_requires = '>=' + cfg['min_python'],
    long_description = open('README.md', encoding='utf-8').read(),
    long_description_content_type = 'text/markdown',
    zip_safe = False,
    entry_points = {
        'console_scripts': cfg.get('console_scripts','').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']
        # Plug-ins of xdeploy_nb declare their own entry points in the group 'xdeploy_nb.plugins' (a module that registers
        # kinds, tasks, formats or variants when imported); `import xdeploy_nb` loads them (xdeploy_nb.builtins, CONTRIBUTING.md).
    },
    **setup_cfg)
