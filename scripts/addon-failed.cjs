// Runs when `node-gyp rebuild` fails during `npm install`: the package still installs and
// runs on the TypeScript reference backend, and says so at run time.
console.error(
  'kdqat: the native addon did not build; kdqat will run on the slow TypeScript reference ' +
    'backend. Install g++, make and python3, then run `npm rebuild kdqat`.',
);
