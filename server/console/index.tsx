// Transitional re-export for importers that still name index.tsx. Import ./console/index.ts instead: Node runs
// TypeScript by stripping types and cannot load .tsx files, so `npm start` needs the .ts entry point.
export * from './index.ts';
