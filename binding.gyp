# The native event pump (src/native/). `npm ci` / `npm install` build it through node-gyp because this
# file sits at the package root. libfuse3 is optional at build time: without `pkg-config fuse3` the
# addon still builds (LOCKSMITH_HAVE_FUSE 0: no FUSE sessions, the synthetic source still works), so
# an install never fails on a machine without libfuse3-dev.
{
  'variables': {
    # '1' when the libfuse3 development files are present. The unused branch of the condition below
    # is never expanded, so its pkg-config commands never run on a machine without them.
    'locksmith_have_fuse%': '<!(sh -c "pkg-config --exists fuse3 >/dev/null 2>&1 && echo 1 || echo 0")',
  },
  'targets': [
    {
      'target_name': 'locksmith_native',
      'sources': [
        'src/native/addon.cc',
        'src/native/pump.cc',
        'src/native/fuse_session.cc',
        'src/native/passthrough.cc',
        'src/native/synth.cc',
      ],
      # node-addon-api 8 exports include_dir as a path relative to the current directory, which gyp
      # sets to this file's directory when it runs the command.
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        # A Napi::Error thrown by a method while its thread's environment is being torn down (a
        # worker terminated, the process exiting) cannot become a JavaScript exception: without
        # this, node-addon-api's ThrowAsJavaScriptException throws again out of its callback
        # wrapper and the process ends in std::terminate ("terminate called after throwing an
        # instance of 'Napi::Error'"); with it, the unthrowable exception is dropped.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
      ],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++17', '-std=gnu++20'],
      'cflags': ['-Wall', '-Wextra', '-Wno-unused-parameter', '-Wno-missing-field-initializers'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-pthread'],
      'ldflags': ['-pthread'],
      'conditions': [
        ['locksmith_have_fuse==1', {
          'defines': ['LOCKSMITH_HAVE_FUSE=1'],
          'cflags': ['<!@(pkg-config --cflags fuse3)'],
          'libraries': ['<!@(pkg-config --libs fuse3)'],
        }, {
          'defines': ['LOCKSMITH_HAVE_FUSE=0'],
        }],
      ],
    },
  ],
}
